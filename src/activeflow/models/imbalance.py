"""The MIPS g-score in the variables of the force balance (ε = 0).

At ε = 0 a particle pressed into its neighbours is held where μF + v0 g ≈ 0, and the law of g given x is
narrow: of width about η = √(γ/μk) along a stiff contact. The local transformer then has to resolve g on
that scale, and its output, s_g + g, is of order 1/η. Here it is fed each token's force imbalance
u^j = (g^j + μF^j/v0)/η in place of g^j, and its output N is read in those units:

    s_g^i = −g^i + N^i(displacements, u)/η,    ∂s_g^i/∂g^i = −I + (∂N^i/∂u^i)/η²,

since g^i enters u^i only (F depends on x alone). On the active solid the exact score is of this form
with N linear in the neighbours' u and O(1) coefficients (−(H/k)u up to O(η)); the network learns it
with score matching in g (`training.denoising`, objective "score_matching").

F is the system's force on each particle of the snapshot, computed by the caller (the same trained model
serves snapshots of any N and φ, each with its own box).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from activeflow.chunking import map_blocks
from activeflow.models.local_transformer import DIVERGENCE_CHUNK, LocalTransformerScore

Snapshot = Float[Array, "N d"]
Indices = Int[Array, "n K"]


class ImbalanceScore(eqx.Module):
    """s_g = −g + N(x, u)/η with u = (g + μF/v0)/η; `network` is a local transformer without shift."""

    network: LocalTransformerScore
    mu: float = eqx.field(static=True)
    v0: float = eqx.field(static=True)
    eta: float = eqx.field(static=True)

    def __check_init__(self):
        if self.network.shift:
            raise ValueError("the imbalance score adds −g itself: its network must have shift=False")
        if not (self.v0 > 0 and self.eta > 0):
            raise ValueError(f"need v0 > 0 and eta > 0; got v0={self.v0}, eta={self.eta}")

    @property
    def n_neighbours(self) -> int:
        return self.network.n_neighbours

    def inputs(self, force: Snapshot, g: Snapshot) -> Snapshot:
        """u = (g + μF/v0)/η of every particle."""
        return (g + self.mu * force / self.v0) / self.eta

    def _fields(self, x, g, u, particle, neighbours, box):
        value, jac = self.network.particle_divergence(x, u, particle, neighbours, box)
        div = -x.shape[-1] + jnp.trace(jac) / self.eta**2
        return -g[particle] + value / self.eta, div

    def at(self, x: Snapshot, g: Snapshot, force: Snapshot, particles: Int[Array, " n"], neighbours: Indices,
           box: float | None) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
        """(s_g^i, ∇_{g^i}·s_g^i) of the listed particles, unchunked (a training batch)."""
        u = self.inputs(force, g)
        return jax.vmap(lambda i, nb: self._fields(x, g, u, i, nb, box))(particles, neighbours)

    @eqx.filter_jit
    def score_and_divergence(self, x: Snapshot, g: Snapshot, neighbours: Indices, box: float | None, *,
                             force: Snapshot, chunk_size: int | None = DIVERGENCE_CHUNK
                             ) -> tuple[Snapshot, Float[Array, " N"]]:
        """(s_g^i, ∇_{g^i}·s_g^i) of every particle, exact, `chunk_size` particles at a time."""
        u = self.inputs(force, g)
        ids = jnp.arange(x.shape[0])
        return map_blocks(jax.vmap(lambda a: self._fields(x, g, u, a[0], a[1], box)), (ids, neighbours), chunk_size)
