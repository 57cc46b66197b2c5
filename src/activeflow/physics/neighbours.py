"""O(N) neighbour search in a periodic box under JIT: cell lists feeding a fixed-capacity Verlet list.

Shapes are fixed so that everything compiles once: each cell holds at most `cell_capacity` particles,
each particle at most `max_neighbours` neighbours, and empty slots hold the sentinel index N. Instead of
silently dropping particles when a capacity is too small, every build records the largest occupancy it
saw; `check` turns that into an error naming the setting to increase (it needs concrete values, so call
it outside JIT, e.g. after each chunk of a simulation), and `grown` returns a search that fits.

The list holds every pair closer than `cutoff + skin` when it was built. As long as no particle has moved
more than skin/2 since, it still holds every pair closer than `cutoff` (the Verlet argument), so
`update` rebuilds only when some particle has moved further. No array has a dimension N×N.
"""

import dataclasses
import functools
import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from scipy.spatial import cKDTree

from activeflow.chunking import map_blocks
from activeflow.errors import ActiveflowError
from activeflow.physics.space import cell_coordinates, fold, minimum_image

Positions = Float[Array, "N d"]
# Rows per block when building a list: the candidate arrays of a block then fit in cache
# (docs/performance.md).
BUILD_BLOCK = 4096
# With the "blocked" layout, pair sums over an unsliced list go in runs of this many particles, so that
# the (width × run) pair arrays stay in cache on a CPU (docs/performance.md).
PAIR_BLOCK = 8192
# `_compact` unrolls its loops over groups of columns up to this many groups.
SMALL_GROUP_COUNT = 16
# `_sort_by_key` sorts the key·N + index when it fits in int32, and falls back to an argsort.
PACKED_KEY_LIMIT = 2**31
# With the "blocked" layout, `fitted` slices the list (see NeighbourSearch) from this many particles on,
# into SLICES slices whose widths exceed the rows' largest count by SLICE_MARGIN (the top slice: by the
# relative margin).
SLICED_FROM, SLICES, SLICE_MARGIN = 4096, 4, 2

# How lists are laid out for pair sums, as jax-md's `format=`: "blocked" (sums in runs of PAIR_BLOCK
# particles, lists sliced from SLICED_FROM particles on) was faster on CPUs, "whole" (one pass, one
# wide list) on a GPU (docs/performance.md).
LAYOUTS = ("blocked", "whole")


def default_layout() -> str:
    """The layout for JAX's default backend: "blocked" on a CPU, "whole" on an accelerator."""
    return "blocked" if jax.default_backend() == "cpu" else "whole"


class NeighbourOverflow(ActiveflowError, RuntimeError):
    """A cell or a neighbour list needed more slots than its fixed capacity."""


class NeighbourList(eqx.Module):
    """Neighbours of each particle (padded with N) and what is needed to keep the list valid.

    `indices` holds a row per particle; `columns` holds the same list for summing pair terms, column-major
    (one row per neighbour slot, one column per particle): a pair sum is then a sum over the leading
    axis, which XLA-CPU vectorises across particles (docs/performance.md). `max_cell_count` and
    `max_neighbour_count` are running maxima over every build since the list was first made, so one check
    after a chunk of steps catches an overflow in any rebuild within it."""

    indices: Int[Array, "N M"]
    reference: Positions  # positions at the last build
    max_cell_count: Int[Array, ""]
    max_neighbour_count: Int[Array, ""]
    n_builds: Int[Array, ""]
    # Column-major blocks: indices.T, or with slices (a search with slice_widths; rows sorted by their
    # neighbour count and cut into slices) each slice's rows cut to its width, transposed.
    columns: tuple[Int[Array, "_width _rows"], ...] = ()  # widths and rows differ between slices
    order: Int[Array, " N"] | None = None  # sliced: particle of each sorted row
    inverse: Int[Array, " N"] | None = None  # sliced: sorted row of each particle
    slice_counts: Int[Array, " slices"] | None = None  # running maxima of each slice's largest count
    pair_block: int | None = eqx.field(static=True, default=None)  # unsliced: particles per run of pair sums

    def column_blocks(self) -> list[tuple[Int[Array, " rows"] | slice, Int[Array, "width rows"]]]:
        """(particles, their neighbour indices column-major) of each block: each slice, or the whole
        list in runs of at most `pair_block` particles (a slice of particle indices). Sum pair terms
        over axis 0 and pass the results to `in_order`."""
        if self.order is None:
            columns = self.columns[0] if self.columns else self.indices.T
            n = columns.shape[1]
            run = self.pair_block or n
            return [(slice(a, min(a + run, n)), columns[:, a:a + run]) for a in range(0, n, run)]
        bounds = _slice_bounds(self.indices.shape[0], len(self.columns))
        return [(self.order[a:b], block) for (a, b), block in zip(bounds, self.columns)]

    def in_order(self, per_block: list[Float[Array, " _rows"]]) -> Float[Array, " N"]:
        """Per-particle values from the per-block values of `column_blocks`, in particle order."""
        values = jnp.concatenate(per_block) if len(per_block) > 1 else per_block[0]
        if self.order is None:
            return values
        return values.at[self.inverse].get(mode="promise_in_bounds")


def _sort_by_key(key: Int[Array, " N"], n_keys: int) -> tuple[Int[Array, " N"], Int[Array, " N"]]:
    """Indices sorted by key (0 ≤ key < n_keys), ties by index, and the sorted keys. Sorts the one
    packed key·N + index when it fits in int32 (faster than an argsort on XLA-CPU), else argsorts."""
    n = key.shape[0]
    if n_keys * n < PACKED_KEY_LIMIT:
        packed = jnp.sort(key * n + jnp.arange(n, dtype=jnp.int32))
        return packed % n, packed // n
    order = jnp.argsort(key).astype(jnp.int32)
    return order, key[order]


def _slice_bounds(n: int, n_slices: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, n_slices + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _ball_volume(radius: float, dim: int) -> float:
    return math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * radius**dim


class NeighbourSearch(eqx.Module):
    """Static description of a cell-list/Verlet-list search in a periodic cube of side `box` (positions may
    lie anywhere: they are folded into the box). Cells have side ≥ cutoff + skin, so the 3^d cells around
    a particle's own cell hold every candidate. Distances are minimum-image: with a radius beyond L/2 each
    pair is still listed once, at its minimum-image distance (a radius ≥ L√d/2 lists all pairs).

    With `slice_widths` the list is also kept sliced (the sliced-ELLPACK format of sparse matrices):
    rows sorted by their number of neighbours and cut into len(slice_widths) slices of about equal
    size, slice b keeping slice_widths[b] columns. A force then costs Σ widths·rows instead of
    N·max_neighbours: the padding follows the typical row, not the fullest one, whose count grows with N
    (docs/performance.md)."""

    box: float = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    skin: float = eqx.field(static=True)
    cell_capacity: int = eqx.field(static=True)
    max_neighbours: int = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=2)
    slice_widths: tuple[int, ...] = eqx.field(static=True, default=())
    layout: str = eqx.field(static=True, default_factory=default_layout)

    def __check_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"neighbour list layout={self.layout!r}; allowed: {list(LAYOUTS)}")
        if not self.cutoff > 0 or not self.skin >= 0:
            raise ValueError(f"need cutoff > 0 and skin >= 0, got cutoff={self.cutoff}, skin={self.skin}")
        if self.cell_capacity < 1 or self.max_neighbours < 1:
            raise ValueError("cell_capacity and max_neighbours must be positive")
        if any(not 1 <= w <= self.max_neighbours for w in self.slice_widths):
            raise ValueError(f"slice widths must lie in [1, max_neighbours={self.max_neighbours}], "
                             f"got {self.slice_widths}")

    @classmethod
    def for_density(
        cls, box: float, cutoff: float, skin: float, max_density: float, dim: int = 2, margin: float = 1.25
    ) -> "NeighbourSearch":
        """Capacities sized for a local number density up to `max_density` (particles per unit volume),
        with a relative `margin` and a few extra slots for fluctuations."""
        radius = cutoff + skin
        m = max(int(box // radius), 1)
        cell = max_density * (box / m) ** dim
        ball = max_density * _ball_volume(radius, dim)
        return cls(
            box=box, cutoff=cutoff, skin=skin, dim=dim,
            cell_capacity=math.ceil(margin * cell) + 4, max_neighbours=math.ceil(margin * ball) + 4,
        )

    @property
    def radius(self) -> float:
        """Radius of the list: every pair closer than this at build time is in it."""
        return self.cutoff + self.skin

    @property
    def cells_per_side(self) -> int:
        return max(int(self.box // self.radius), 1)

    @property
    def n_cells(self) -> int:
        return self.cells_per_side**self.dim

    def _stencil(self) -> np.ndarray:
        """Offsets of the cells to search around a particle's own cell. With fewer than 3 cells a side,
        −1 and +1 (or all three offsets) name the same cell: list each distinct cell once."""
        m = self.cells_per_side
        steps = (-1, 0, 1) if m >= 3 else tuple(range(m))
        return np.array(list(itertools.product(steps, repeat=self.dim)), dtype=np.int32)

    def _cell_coordinates(self, x: Positions) -> Int[Array, "N d"]:
        return cell_coordinates(x, self.box, self.cells_per_side)

    def _flat(self, coords: Int[Array, "... d"]) -> Int[Array, "..."]:
        m = self.cells_per_side
        weights = jnp.asarray(m ** np.arange(self.dim)[::-1], dtype=jnp.int32)
        return jnp.sum(coords * weights, axis=-1)

    def cells(self, x: Positions) -> tuple[Int[Array, "n_cells cell_capacity"], Int[Array, ""]]:
        """Cell list: for each cell the particles in it, padded with N; and the largest occupancy."""
        n = x.shape[0]
        cell = self._flat(self._cell_coordinates(x))
        order, sorted_cell = _sort_by_key(cell, self.n_cells)
        counts = jnp.bincount(cell, length=self.n_cells)
        # The rank of a particle within its cell is its position in the sorted order minus the cell's start.
        start = jnp.cumsum(counts) - counts
        rank = jnp.arange(n, dtype=jnp.int32) - start[sorted_cell]
        slot = jnp.where(rank < self.cell_capacity, sorted_cell * self.cell_capacity + rank, -1)
        table = jnp.full(self.n_cells * self.cell_capacity, n, dtype=jnp.int32)
        table = table.at[slot].set(order.astype(jnp.int32), mode="drop")
        return table.reshape(self.n_cells, self.cell_capacity), jnp.max(counts)

    def build(self, x: Positions, previous: NeighbourList | None = None) -> NeighbourList:
        """A fresh list at positions x (maxima carried over from `previous`, if given)."""
        n = x.shape[0]
        table, max_cell = self.cells(x)
        coords = self._cell_coordinates(x)
        own = jnp.arange(n, dtype=jnp.int32)

        def rows(args):
            """Neighbours of a block of particles (their cell coordinates, their indices)."""
            coords, own = args
            candidates = self._candidates(table, coords)
            r2 = squared_distances(x, candidates, self.box, centres=own)
            inside = (candidates < n) & (candidates != own[:, None]) & (r2 < self.radius**2)
            return _compact(candidates, inside, self.max_neighbours, fill=n)

        # In blocks of rows, so that the (rows × 3^d·cell_capacity) candidate arrays stay in cache.
        indices, counts = map_blocks(rows, (coords, own), BUILD_BLOCK)
        max_nbrs = jnp.max(counts)
        block = PAIR_BLOCK if self.layout == "blocked" else None
        fields = self._sliced(indices, counts) if self.slice_widths else dict(columns=(indices.T,), pair_block=block)
        if previous is None:
            return NeighbourList(indices, x, max_cell, max_nbrs, jnp.asarray(1, jnp.int32), **fields)
        if self.slice_widths:
            fields["slice_counts"] = jnp.maximum(fields["slice_counts"], previous.slice_counts)
        return NeighbourList(
            indices, x,
            jnp.maximum(max_cell, previous.max_cell_count),
            jnp.maximum(max_nbrs, previous.max_neighbour_count),
            previous.n_builds + 1,
            **fields,
        )

    def _sliced(self, indices: Int[Array, "N M"], counts: Int[Array, " N"]) -> dict:
        """The sliced format's fields (see the class): rows by count, ties by index."""
        n, m = indices.shape
        order, sorted_counts = _sort_by_key(counts, m + 1)
        inverse = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        bounds = _slice_bounds(n, len(self.slice_widths))
        columns = tuple(  # gathered column-major: row k of a block is slot k of each of its rows
            indices.reshape(-1).at[order[None, a:b] * m + jnp.arange(w, dtype=jnp.int32)[:, None]].get(
                mode="promise_in_bounds")
            for (a, b), w in zip(bounds, self.slice_widths)
        )
        slice_counts = jnp.stack([sorted_counts[b - 1] for _, b in bounds])
        return dict(order=order, inverse=inverse, columns=columns, slice_counts=slice_counts)

    def needs_rebuild(self, neighbours: NeighbourList, x: Positions) -> Bool[Array, ""]:
        moved = minimum_image(x - neighbours.reference, self.box)
        # Per coordinate, not a norm over the trailing axis (see `displacement_components`); `any`, not
        # `max` (faster on XLA-CPU).
        return jnp.any(sum(moved[:, c] ** 2 for c in range(self.dim)) > (self.skin / 2) ** 2)

    def update(self, neighbours: NeighbourList, x: Positions) -> NeighbourList:
        """The list valid at x: the same one if no particle moved more than skin/2 since it was built."""
        return jax.lax.cond(
            self.needs_rebuild(neighbours, x),
            lambda: self.build(x, neighbours),
            lambda: neighbours,
        )

    def overflowed(self, neighbours: NeighbourList) -> Bool[Array, ""]:
        full = (neighbours.max_cell_count > self.cell_capacity) | (
            neighbours.max_neighbour_count > self.max_neighbours
        )
        if self.slice_widths:
            full = full | jnp.any(neighbours.slice_counts > jnp.asarray(self.slice_widths))
        return full

    def check(self, neighbours: NeighbourList) -> None:
        """Raise `NeighbourOverflow` naming the capacity to increase (needs concrete values: not under JIT)."""
        cell, nbrs = int(neighbours.max_cell_count), int(neighbours.max_neighbour_count)
        problems = []
        if cell > self.cell_capacity:
            problems.append(f"a cell held {cell} particles but cell_capacity={self.cell_capacity}")
        if nbrs > self.max_neighbours:
            # With a cell overflow this count is a lower bound (particles were missing from the cells).
            problems.append(f"a particle had {nbrs} neighbours but max_neighbours={self.max_neighbours}")
        if self.slice_widths:
            needed = [int(c) for c in neighbours.slice_counts]
            if any(c > w for c, w in zip(needed, self.slice_widths)):
                problems.append(f"the slices' fullest rows had {needed} neighbours but slice_widths="
                                f"{list(self.slice_widths)}")
        if problems:
            raise NeighbourOverflow(
                "neighbour list overflow: " + "; ".join(problems) + ". Increase cell_capacity / "
                "max_neighbours / slice_widths (results since the last check are invalid)."
            )

    def fitted(
        self, neighbours: NeighbourList, margin: float = 1.25, n_slices: int | None = None
    ) -> "NeighbourSearch":
        """A search whose capacities fit the occupancies seen so far with a relative margin (smaller or
        larger than these). The per-step cost grows with the list's width, so a snug fit is faster.

        The list is sliced into `n_slices` (default: SLICES from SLICED_FROM particles on with the
        "blocked" layout, else none): the top slice gets max_neighbours, the others their fullest
        row's count plus SLICE_MARGIN (a quantile of the counts fluctuates far less than their maximum)."""
        cell = math.ceil(margin * int(neighbours.max_cell_count)) + 1
        nbrs = math.ceil(margin * int(neighbours.max_neighbour_count)) + 1
        if int(neighbours.max_cell_count) > self.cell_capacity:
            # A cell overflow hid neighbours: grow the list at least in proportion.
            nbrs = max(nbrs, math.ceil(self.max_neighbours * cell / self.cell_capacity))
        n = neighbours.indices.shape[0]
        if n_slices is None:
            n_slices = SLICES if n >= SLICED_FROM and self.layout == "blocked" else 0
        widths = ()
        if n_slices > 1:
            counts = np.sort(np.sum(np.asarray(neighbours.indices) < n, axis=1))
            needed = [int(counts[b - 1]) for _, b in _slice_bounds(n, n_slices)]
            if neighbours.slice_counts is not None and len(neighbours.slice_counts) == n_slices:
                needed = np.maximum(needed, np.asarray(neighbours.slice_counts)).tolist()
            widths = tuple(min(c + SLICE_MARGIN, nbrs) for c in needed[:-1]) + (nbrs,)
        return dataclasses.replace(self, cell_capacity=cell, max_neighbours=nbrs, slice_widths=widths)

    def grown(self, neighbours: NeighbourList, margin: float = 1.25) -> "NeighbourSearch":
        """Capacities at least as large as these that fit the occupancies seen so far (for retrying)."""
        fit = self.fitted(neighbours, margin, n_slices=len(self.slice_widths))
        return dataclasses.replace(
            self,
            cell_capacity=max(self.cell_capacity, fit.cell_capacity),
            max_neighbours=max(self.max_neighbours, fit.max_neighbours),
            slice_widths=tuple(max(a, b) for a, b in zip(self.slice_widths, fit.slice_widths)),
        )

    def nearest(
        self, x: Positions, neighbours: NeighbourList, k: int
    ) -> tuple[Int[Array, "N k"], Bool[Array, " N"]]:
        """The k nearest neighbours of each particle (minimum image, nearest first) picked from the list,
        and whether that choice is certainly right: the list holds every particle within `cutoff` of x
        (see `update`), so it is when the k-th distance is below `cutoff` and nothing overflowed.
        Indices only; callers recompute displacements (under stop_gradient of the choice)."""
        if k > self.max_neighbours:
            raise ValueError(f"k={k} nearest neighbours need max_neighbours >= k, got {self.max_neighbours}")
        n = x.shape[0]
        r2 = squared_distances(x, neighbours.indices, self.box)
        r2 = jnp.where(neighbours.indices < n, r2, jnp.inf)
        neg, column = jax.lax.top_k(-r2, k)
        chosen = jnp.take_along_axis(neighbours.indices, column, axis=1)
        complete = (-neg[:, -1] < self.cutoff**2) & ~self.overflowed(neighbours)
        return chosen, complete

    def _candidates(self, table: Int[Array, "n_cells cell_capacity"], coords: Int[Array, "n d"]) -> Int[Array, "n M"]:
        """The particles of the 3^d cells around each of these cell coordinates (padding N included)."""
        around = jnp.mod(coords[:, None, :] + jnp.asarray(self._stencil())[None], self.cells_per_side)
        # Flat element gathers: on XLA-CPU much faster than gathering whole rows of the cell table.
        slots = self._flat(around)[..., None] * self.cell_capacity + jnp.arange(self.cell_capacity, dtype=jnp.int32)
        return table.reshape(-1).at[slots.reshape(coords.shape[0], -1)].get(mode="promise_in_bounds")

    def nearest_of(
        self, x: Positions, centres: Int[Array, " n"], k: int
    ) -> tuple[Int[Array, "n k"], Bool[Array, " n"]]:
        """`nearest` for the particles `centres` only, straight from the cell list (no Verlet list):
        O(N) for the cell table and O(n·3^d·cell_capacity) for the centres, where a whole list costs
        O(N·3^d·cell_capacity). A training batch of a large, inhomogeneous snapshot needs no more. The
        choice is certainly right when the k-th distance is below `radius` and no cell overflowed."""
        n = x.shape[0]
        table, max_cell = self.cells(x)
        candidates = self._candidates(table, self._cell_coordinates(x[centres]))
        if k > candidates.shape[1]:
            raise ValueError(f"k={k} nearest neighbours need 3^d·cell_capacity >= k, got {candidates.shape[1]}")
        r2 = squared_distances(x, candidates, self.box, centres=centres)
        r2 = jnp.where((candidates < n) & (candidates != centres[:, None]), r2, jnp.inf)
        neg, column = jax.lax.top_k(-r2, k)
        chosen = jnp.take_along_axis(candidates, column, axis=1)
        complete = (-neg[:, -1] < self.radius**2) & (max_cell <= self.cell_capacity)
        return chosen, complete


def _compact(
    values: Int[Array, "N W"], keep: Bool[Array, "N W"], width: int, fill: int
) -> tuple[Int[Array, "N width"], Int[Array, " N"]]:
    """Each row's kept values moved to the front, in their order, padded with `fill` and cut to `width`
    columns; and how many each row kept.

    The columns are taken in groups of a few (`_group_size`), each group's keep flags packed into one
    integer: output slot j lies in the group whose running count first exceeds j, and within it at the
    r-th set bit of the group's mask, read from a table of 2^group × group entries: a handful of gathers
    per output slot, faster than a binary search, a row sort or a scatter (docs/performance.md)."""
    n, w = values.shape
    group = _group_size(w)
    n_groups = -(-w // group)
    if n_groups * group > w:
        keep = jnp.pad(keep, ((0, 0), (0, n_groups * group - w)))
    flags = keep.reshape(n, n_groups, group).astype(jnp.int32)
    masks = jnp.sum(flags << jnp.arange(group, dtype=jnp.int32), axis=2)
    counts = jnp.sum(flags, axis=2)
    slot = jnp.arange(width, dtype=jnp.int32)
    running = jnp.cumsum(counts, axis=1)
    if n_groups <= SMALL_GROUP_COUNT:  # unrolled: faster than a search for few groups
        # The group of slot j (n_groups: none), summed group by group: no (N, width, groups) array.
        owner = sum((running[:, k, None] <= slot[None, :]).astype(jnp.int32) for k in range(n_groups))
    else:  # many groups (large capacities): compile time stays flat
        owner = jax.vmap(lambda r: jnp.searchsorted(r, slot, side="right"))(running).astype(jnp.int32)
    owner_safe = jnp.minimum(owner, n_groups - 1)
    rank = slot[None, :] - jnp.take_along_axis(running - counts, owner_safe, axis=1)
    mask = jnp.take_along_axis(masks, owner_safe, axis=1)
    position = jnp.asarray(_set_bit_positions(group)).at[mask * group + jnp.clip(rank, 0, group - 1)].get(
        mode="promise_in_bounds")
    column = jnp.minimum(owner_safe * group + position, w - 1)
    found = jnp.take_along_axis(values, column, axis=1)
    return jnp.where(owner < n_groups, found, fill), running[:, -1]


def _group_size(w: int) -> int:
    """Columns per group in `_compact`: a divisor of w near 9 when there is one (no padding; the list
    build's rows hold 3^d·cell_capacity candidates), else 9."""
    for size in (9, 10, 8, 11, 12, 7, 6):
        if w % size == 0:
            return size
    return min(w, 9)


@functools.cache  # built once per group size, not at every trace
def _set_bit_positions(group: int) -> np.ndarray:
    """Flat table: entry mask·group + r is the position of the r-th set bit of mask (0 past the last)."""
    table = np.zeros((1 << group, group), np.int32)
    for mask in range(1 << group):
        bits = [b for b in range(group) if mask >> b & 1]
        table[mask, : len(bits)] = bits
    table.flags.writeable = False
    return table.reshape(-1)


def displacement_components(
    x: Positions, indices: Int[Array, "a b"], box: float, centres: Int[Array, " c"] | slice | None = None,
    column_major: bool = False,
) -> tuple[Float[Array, "a b"], ...]:
    """Minimum-image x^i − x^j for j = indices[i] (i = centres[row], or the row itself), one (n, M)
    array per coordinate; padding slots (index N) get the harmless component 1, so that norms and
    their derivatives stay finite there. With `column_major` the indices and the results are (M, n):
    column i holds the neighbours of centre i (`NeighbourList.columns`).

    One array per coordinate, not an (n, M, d) array: on XLA-CPU the gathers and the arithmetic of a
    trailing axis of size d = 2 vectorise poorly (docs/performance.md)."""
    n = x.shape[0]
    valid = indices < n
    components = []
    for c in range(x.shape[1]):
        # One padding entry makes every index valid: a plain gather, no bounds handling per element.
        padded = jnp.concatenate([x[:, c], jnp.zeros((1,), x.dtype)])
        own = x[:, c] if centres is None else x[centres, c]
        own = own[None, :] if column_major else own[:, None]
        dx = minimum_image(own - padded.at[indices].get(mode="promise_in_bounds"), box)
        components.append(jnp.where(valid, dx, 1.0))
    return tuple(components)


def squared_distances(
    x: Positions, indices: Int[Array, "n M"], box: float, centres: Int[Array, " n"] | None = None
) -> Float[Array, "n M"]:
    """|x^i − x^j|² (minimum image) as in `displacement_components`; d at padding slots."""
    return sum(dx**2 for dx in displacement_components(x, indices, box, centres))


def displacements(x: Positions, indices: Int[Array, "N M"], box: float) -> Float[Array, "N M d"]:
    """`displacement_components` stacked on a trailing axis."""
    return jnp.stack(displacement_components(x, indices, box), axis=-1)


# ---- k nearest neighbours ---------------------------------------------------------------------------


@eqx.filter_jit
def k_nearest(
    search: NeighbourSearch, x: Positions, k: int, centres: Int[Array, " n"] | None = None
) -> tuple[Int[Array, "n k"], Bool[Array, " n"]]:
    """Indices of the k nearest neighbours (minimum image) of every particle, or of `centres` only, and
    whether each choice is certainly right (see `NeighbourSearch.nearest`). JIT-able; O(N), and for
    `centres` the work beyond the O(N) cell table scales with their number. The choice is piecewise
    constant in x and is taken under stop_gradient."""
    x = jax.lax.stop_gradient(x)
    if centres is not None:
        indices, complete = search.nearest_of(x, centres, k)
    else:
        indices, complete = search.nearest(x, search.build(x), k)
    return jax.lax.stop_gradient(indices), complete


def nearest_search(
    x: Float[ArrayLike, "*S N d"], box: float, k: int, *, margin: float = 1.2, capacity_margin: float = 1.25
) -> NeighbourSearch:
    """A `NeighbourSearch` whose `k_nearest(search, ·, k)` is complete for every snapshot in x (one
    (N, d) snapshot or a stack of them): its cut-off is `margin` × the largest k-th-neighbour distance
    in the data, so that slightly moved (e.g. noised) copies stay complete, and its capacities fit the
    data with a relative `capacity_margin` plus headroom for fluctuations. `k_nearest` still reports
    completeness for the snapshot it is given: check it.

    This only *sizes* the search, outside JIT, with a periodic k-d tree (scipy) on the concrete data,
    so it compiles nothing; the neighbours themselves come from the cell/Verlet lists of
    this module. Memory O(N) per snapshot."""
    snapshots = np.asarray(x, dtype=np.float64).reshape(-1, *np.shape(x)[-2:])
    n, dim = snapshots.shape[1:]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} nearest neighbours need 1 <= k <= N - 1 = {n - 1}")
    folded = [fold(f, box) for f in snapshots]
    trees = [cKDTree(f, boxsize=box) for f in folded]
    kth = max(float(t.query(f, k=k + 1)[0][:, -1].max()) for t, f in zip(trees, folded))
    radius_all = box * math.sqrt(dim) / 2 * (1 + 1e-9)  # lists every pair (minimum image)
    cutoff = min(max(margin * kth, 1e-9 * box), radius_all)
    m = NeighbourSearch(box=box, cutoff=cutoff, skin=0.0, cell_capacity=1, max_neighbours=1, dim=dim).cells_per_side
    weights = m ** np.arange(dim)[::-1]
    cell = max(int(np.bincount(cell_coordinates(f, box, m) @ weights).max()) for f in folded)
    nbrs = max(int(t.query_ball_point(f, r=cutoff, return_length=True).max()) - 1 for t, f in zip(trees, folded))

    def room(count: int) -> int:
        return math.ceil(capacity_margin * count + 2 * math.sqrt(count)) + 2

    return NeighbourSearch(box=box, cutoff=cutoff, skin=0.0, dim=dim,
                           cell_capacity=room(cell), max_neighbours=max(room(nbrs), k))
