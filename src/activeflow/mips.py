"""Motility-induced phase separation (§7, App. F.4–F.5): N soft disks in a periodic square box.

The pair force (95) is cut off where it falls below `force_tolerance` (`forces.soft_disk_cutoff`) and
summed over a neighbour list (`activeflow.neighbours`), so one force evaluation costs O(N) and no N×N
array is formed. The simulation keeps a Verlet list with a skin and rebuilds it only when a particle has
moved more than half the skin; g takes its exact OU step and x an Euler–Maruyama step (with ε = 0, as in
the paper, that is the deterministic drift step).
"""

import dataclasses
import logging
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from activeflow.forces import soft_disk_cutoff, soft_disk_divergence_of_distance, soft_disk_force_scale
from activeflow.neighbours import NeighbourList, NeighbourSearch, displacement_components
from activeflow.simulate import ou_step
from activeflow.systems import AOUPSystem

log = logging.getLogger(__name__)
Snapshot = Float[Array, "N d"]

OVERFLOW_MESSAGE = (
    "MIPS neighbour search overflowed: increase the system's cell_capacity / max_neighbours "
    "(or max_packing, which sizes both)"
)


class MIPS(AOUPSystem):
    """N AOUPs with the smoothed soft-disk repulsion (95) in a periodic square of side L = √(Nπa²/φ).

    `cell_capacity` and `max_neighbours` size the neighbour search of `force`/`force_divergence`; left
    as None they are set for a local packing fraction up to `max_packing` (number density
    max_packing/(πa²)). D_x = ε may be 0 (the paper's athermal case): drift, force and simulation work,
    but the inherited `boltzmann_score` divides by D_x and is then infinite, as the Boltzmann law is."""

    a: float = eqx.field(static=True)
    k: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    phi: float = eqx.field(static=True)
    n_particles: int = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=2)
    force_tolerance: float = eqx.field(static=True, default=1e-6)
    max_packing: float = eqx.field(static=True, default=1.0)
    cell_capacity: int | None = eqx.field(static=True, default=None)
    max_neighbours: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.dim != 2:
            raise ValueError(f"MIPS is defined in d = 2 (packing fraction φ = Nπa²/L²), got dim={self.dim}")
        if not 0 < self.phi:
            raise ValueError(f"packing fraction phi must be positive, got {self.phi}")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        if self.cutoff > self.box / 2:
            # Beyond L/2 a particle would also feel images other than the nearest one.
            raise ValueError(
                f"force cut-off {self.cutoff:g} exceeds half the box side {self.box / 2:g}: "
                "use more particles, a smaller phi or a larger force_tolerance"
            )

    @property
    def box(self) -> float:
        return math.sqrt(self.n_particles * math.pi * self.a**2 / self.phi)

    @property
    def cutoff(self) -> float:
        """Pairs farther apart than this feel a force below `force_tolerance`; they are left out."""
        return soft_disk_cutoff(self.a, self.k, self.beta, self.force_tolerance)

    def neighbour_search(self, skin: float = 0.0) -> NeighbourSearch:
        """The search used for this system's forces, with a Verlet `skin` for simulation."""
        search = NeighbourSearch.for_density(
            self.box, self.cutoff, skin, self.max_packing / (math.pi * self.a**2), self.dim
        )
        return dataclasses.replace(
            search,
            cell_capacity=self.cell_capacity or search.cell_capacity,
            max_neighbours=self.max_neighbours or search.max_neighbours,
        )

    def _pairs(self, x: Snapshot, particles: Int[Array, " n"] | slice, columns: Int[Array, "M n"]):
        """Pair displacements (one array per coordinate), distances and the within-cut-off mask of a
        block of the list (`NeighbourList.column_blocks`: one column per centre)."""
        dx = displacement_components(x, columns, self.box, centres=particles, column_major=True)
        r2 = sum(c**2 for c in dx)
        # The padding's stand-in vector may lie inside the cut-off: mask it by index, not by distance.
        near = (columns < x.shape[0]) & (r2 < self.cutoff**2)
        r = jnp.sqrt(jnp.where(near, r2, 1.0))  # r > 0 wherever it is used
        return dx, r, near

    def force_from(self, x: Snapshot, neighbours: NeighbourList) -> Snapshot:
        """F^i = Σ_{j within the cut-off} f(x^i − x^j), with a neighbour list valid at x."""
        sums = []  # per block, one sum per coordinate
        for particles, columns in neighbours.column_blocks():
            dx, r, near = self._pairs(x, particles, columns)
            scale = jnp.where(near, soft_disk_force_scale(r, self.a, self.k, self.beta), 0.0)
            sums.append([jnp.sum(scale * c, axis=0) for c in dx])
        return jnp.stack([neighbours.in_order([s[c] for s in sums]) for c in range(self.dim)], axis=-1)

    def force_divergence_from(self, x: Snapshot, neighbours: NeighbourList) -> Float[Array, " N"]:
        sums = []
        for particles, columns in neighbours.column_blocks():
            _, r, near = self._pairs(x, particles, columns)
            pair = soft_disk_divergence_of_distance(r, self.a, self.k, self.beta, self.dim)
            sums.append(jnp.sum(jnp.where(near, pair, 0.0), axis=0))
        return neighbours.in_order(sums)

    def _fresh_neighbours(self, x: Snapshot) -> NeighbourList:
        # The list is an index choice, not a function of x to differentiate through.
        search = self.neighbour_search()
        return search.build(jax.lax.stop_gradient(x))

    def force(self, x: Snapshot) -> Snapshot:
        neighbours = self._fresh_neighbours(x)
        f = self.force_from(x, neighbours)
        return eqx.error_if(f, self.neighbour_search().overflowed(neighbours), OVERFLOW_MESSAGE)

    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        neighbours = self._fresh_neighbours(x)
        div = self.force_divergence_from(x, neighbours)
        return eqx.error_if(div, self.neighbour_search().overflowed(neighbours), OVERFLOW_MESSAGE)

    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        """Uniform in the box (overlaps are pushed apart by the first steps)."""
        shape = (n, self.n_particles, self.dim)
        return jax.random.uniform(key, shape, minval=-self.box / 2, maxval=self.box / 2)


def step(
    system: MIPS, search: NeighbourSearch, key: jax.Array, x: Snapshot, g: Snapshot,
    neighbours: NeighbourList, dt: float,
) -> tuple[Snapshot, Snapshot, NeighbourList]:
    """One step: refresh the list if needed, x ← x + b_x Δt (+ √(2εΔt) ξ when ε > 0), g by its exact OU
    step. Returns the list valid at the old x (it is refreshed at the start of the next step)."""
    kx, kg = jax.random.split(key)
    neighbours = search.update(neighbours, x)
    x_new = x + dt * (system.mu * system.force_from(x, neighbours) + system.v0 * g)
    if system.eps > 0:
        x_new = x_new + math.sqrt(2 * system.eps * dt) * jax.random.normal(kx, x.shape, x.dtype)
    return system.wrap(x_new), ou_step(system, kg, g, dt), neighbours


@eqx.filter_jit
def advance(
    system: MIPS, search: NeighbourSearch, key: jax.Array, x: Snapshot, g: Snapshot,
    neighbours: NeighbourList, dt: float, n_steps: int,
) -> tuple[Snapshot, Snapshot, NeighbourList]:
    """n_steps steps of one system under lax.scan (dt and n_steps static). Check the returned list with
    `search.check` (or `search.overflowed`) before trusting the result."""

    def body(carry, k):
        return step(system, search, k, *carry, dt), None

    (x, g, neighbours), _ = jax.lax.scan(body, (x, g, neighbours), jax.random.split(key, n_steps))
    return x, g, neighbours


def simulate(
    system: MIPS, key: jax.Array, x: Snapshot, g: Snapshot, dt: float, n_steps: int,
    skin: float = 0.5, chunk: int = 1000, search: NeighbourSearch | None = None, grow: bool = True,
    what: str = "mips",
) -> tuple[Snapshot, Snapshot, NeighbourSearch]:
    """`advance` in chunks of `chunk` steps, checking for overflow after each. On overflow the chunk is
    rerun from its start with capacities grown to fit (`grow=True`, logged) or `NeighbourOverflow` is
    raised (`grow=False`). Returns the final state and the search used, to reuse for the next call.

    Without a `search`, the system's (sized for a packing fraction up to `max_packing`) is fitted to
    the starting state, as jax-md sizes its lists: a step costs in proportion to the list's width, and
    fitted (and, from 4096 particles on, sliced) it ran 1.7-2× faster in benchmarks/neighbour_scaling.py;
    growing it when a cluster forms costs a rerun chunk."""
    if search is None:
        search = system.neighbour_search(skin)
        search = search.fitted(eqx.filter_jit(search.build)(x))
    neighbours = eqx.filter_jit(search.build)(x)
    done, start = 0, time.perf_counter()
    while done < n_steps:
        todo = min(chunk, n_steps - done)
        key, sub = jax.random.split(key)
        while True:
            x_new, g_new, after = advance(system, search, sub, x, g, neighbours, dt, todo)
            if not bool(search.overflowed(after)):
                break
            if not grow:
                search.check(after)
            search = search.grown(after)
            log.info("%s: neighbour list full (the local density rose); rerunning the chunk with "
                     "cell_capacity=%d, max_neighbours=%d", what, search.cell_capacity, search.max_neighbours)
            neighbours = eqx.filter_jit(search.build)(x)
        x, g, neighbours = x_new, g_new, after
        done += todo
        rate = done / (time.perf_counter() - start)
        log.info("%s: step %d/%d (%.0f steps/s, %d list builds, %.0f s left)",
                 what, done, n_steps, rate, int(neighbours.n_builds), (n_steps - done) / rate)
    return x, g, search
