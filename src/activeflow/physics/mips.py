"""Motility-induced phase separation (§7, App. F.4–F.5): N soft disks in a periodic square box.

The pair force (95) is cut off where it falls below `force_tolerance` (`forces.soft_disk_cutoff`) and
summed over a neighbour list (`activeflow.neighbours`), so one force evaluation costs O(N) and no N×N
array is formed. The simulation keeps a Verlet list with a skin and rebuilds it only when a particle has
moved more than half the skin; g takes its exact OU step and x an Euler–Maruyama step (with ε = 0, as in
the paper, that is the deterministic drift step).
"""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from activeflow.physics.forces import soft_disk_cutoff, soft_disk_divergence_of_distance, soft_disk_force_scale
from activeflow.physics.neighbours import NeighbourList, NeighbourSearch, displacement_components
from activeflow.physics.systems import AOUPSystem

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
