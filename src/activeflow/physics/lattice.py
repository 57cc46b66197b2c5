"""An exactly solvable active solid: AOUPs on a periodic square lattice, each bonded to its 4 lattice
neighbours by a zero-rest-length spring k.

Particle i = i₁·n + i₂ sits at the site R_i = ((i₁ + ½)ℓ − L/2, (i₂ + ½)ℓ − L/2) of an n×n lattice of
spacing ℓ in the periodic box L = nℓ (centred on 0, as the MIPS box), and feels
F^i = −k Σ_{j ∈ bonds(i)} (x^i − x^j) (minimum image). The force is linear in the displacements
u^i = x^i − R_i and translation invariant, so the SDE is linear and its stationary law factorises over
Fourier modes (`lattice_exact`). A bond is the lattice's, not a neighbour search's: the force costs O(N).
The closed forms hold while no bond stretches towards half the box, where the minimum image would
attach it to another image: displacements must stay small against L/2 (v0²/(μk) small).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from activeflow.physics.space import minimum_image
from activeflow.physics.systems import AOUPSystem

Snapshot = Float[Array, "N d"]
COORDINATION = 4  # bonds per particle


class Lattice(AOUPSystem):
    """n_side × n_side AOUPs bonded to their 4 lattice neighbours (d = 2, periodic). D_x = ε ≥ 0."""

    k: float = eqx.field(static=True)
    n_side: int = eqx.field(static=True)
    spacing: float = eqx.field(static=True, default=1.0)
    dim: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if self.dim != 2:
            raise ValueError(f"the lattice is square, d = 2; got dim={self.dim}")
        if self.n_side < 3:
            raise ValueError(f"n_side must be at least 3 (4 distinct neighbours), got {self.n_side}")
        if not (self.k > 0 and self.spacing > 0 and self.eps >= 0):
            raise ValueError(f"need k > 0, spacing > 0, eps >= 0; got k={self.k}, spacing={self.spacing}, "
                             f"eps={self.eps}")

    @property
    def n_particles(self) -> int:
        return self.n_side**2

    @property
    def box(self) -> float:
        return self.n_side * self.spacing

    def sites(self) -> np.ndarray:
        """R_i, shape (N, 2), particle i = i₁·n + i₂."""
        c = (np.arange(self.n_side) + 0.5) * self.spacing - self.box / 2
        return np.stack(np.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)

    def _grid(self, x: Snapshot) -> Float[Array, "n n d"]:
        return x.reshape(self.n_side, self.n_side, self.dim)

    def force(self, x: Snapshot) -> Snapshot:
        grid = self._grid(x)
        f = jnp.zeros_like(grid)
        for axis in (0, 1):
            for shift in (1, -1):
                f = f - self.k * minimum_image(grid - jnp.roll(grid, shift, axis), self.box)
        return f.reshape(x.shape)

    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        return jnp.full(x.shape[0], -self.dim * COORDINATION * self.k, x.dtype)

    def hessian_vector_product(self, x: Snapshot, w: Snapshot) -> Snapshot:
        """H w with H = ∇²Φ = k·(graph Laplacian) ⊗ I: minus the force's directional derivative."""
        return -jax.jvp(self.force, (x,), (w,))[1]

    def displacements(self, x: Float[ArrayLike, "*S N d"]) -> Float[Array, "*S N d"]:
        """u^i = x^i − R_i − c, the common shift c (particle 0's displacement) taken out so that
        the result stays small however far the centre of mass has wandered (it enters no mode but q = 0)."""
        u = minimum_image(jnp.asarray(x) - self.sites(), self.box)
        return minimum_image(u - u[..., :1, :], self.box)

    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        """The lattice sites, displaced by a little noise."""
        jitter = 0.05 * self.spacing * jax.random.normal(key, (n, self.n_particles, self.dim))
        return self.wrap(jnp.asarray(self.sites()) + jitter)


def lattice_side(n_particles: int) -> int:
    """n with n² = N, or a clear error."""
    n = math.isqrt(n_particles)
    if n * n != n_particles:
        raise ValueError(f"a square lattice needs N = n², got N = {n_particles}")
    return n


def make_lattice(parameters: dict, n_side: int | None = None) -> Lattice:
    """The config's active solid (`lattice.parameters`), optionally with another side n (transfer)."""
    p = dict(parameters)
    if n_side is not None:
        p["n_side"] = int(n_side)
    try:
        return Lattice(**p)
    except TypeError as err:
        raise ValueError(f"bad parameters for system 'lattice': {err}") from None
