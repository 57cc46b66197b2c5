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

With `contacts` (soft disks only), each token j also carries its contact term c^j = J_ij(u^i − u^j)/k,
J_ij = ∂f/∂r the pair force's Jacobian at r = x^i − x^j, and the centre carries their sum, which is row i
of −(H u)/k (H = ∇²Φ, the pairs beyond the K nearest neglected, where f is below the simulation's force
tolerance for any K covering the cut-off). If the lag b_x relaxed along every contact as in a harmonic
solid, the score would be −(H/k)u/η up to O(η) (the active solid's closed form): the input then carries the
sharp part of the answer, and the network learns where the particles depart from it (collisions, soft
modes). The terms depend on u^i in every token, so the divergence differentiates all of them.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from activeflow.chunking import map_blocks
from activeflow.models.local_transformer import DIVERGENCE_CHUNK, LocalTransformerScore
from activeflow.physics.forces import soft_disk_force_scale

Snapshot = Float[Array, "N d"]
Indices = Int[Array, "n K"]


class SoftDiskContacts(eqx.Module):
    """The contact terms of the soft disks (95): pair Jacobians of the force applied to the imbalance."""

    a: float = eqx.field(static=True)
    k: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)

    def pair_force(self, r: Float[Array, " d"]) -> Float[Array, " d"]:
        """Force on i from j at r = x^i − x^j (no cut-off: the terms are smooth and tiny beyond 2a)."""
        r2 = jnp.sum(r**2)
        distance = jnp.sqrt(jnp.where(r2 > 0, r2, 1.0))  # finite derivatives at r = 0
        return soft_disk_force_scale(distance, self.a, self.k, self.beta) * r

    def terms(self, dx: Float[Array, "T d"], u: Float[Array, "T d"]) -> Float[Array, "T d"]:
        """Rows j ≥ 1: J(x^i − x^j)(u^i − u^j)/k of the tokens (dx: displacements from the centre, row 0
        the centre); row 0: their sum, −(H u)^i/k over the tokens."""
        pair = jax.vmap(lambda r, du: jax.jvp(self.pair_force, (r,), (du,))[1])(-dx[1:], u[0] - u[1:]) / self.k
        return jnp.concatenate([pair.sum(0)[None], pair])


class ImbalanceScore(eqx.Module):
    """s_g = −g + N(x, u)/η with u = (g + μF/v0)/η; `network` is a local transformer without shift, whose
    token inputs are u, or u and the contact terms with `contacts`."""

    network: LocalTransformerScore
    mu: float = eqx.field(static=True)
    v0: float = eqx.field(static=True)
    eta: float = eqx.field(static=True)
    contacts: SoftDiskContacts | None = None

    def __check_init__(self):
        if self.network.shift:
            raise ValueError("the imbalance score adds −g itself: its network must have shift=False")
        if not (self.v0 > 0 and self.eta > 0):
            raise ValueError(f"need v0 > 0 and eta > 0; got v0={self.v0}, eta={self.eta}")
        features = self.network.network.embed_g.in_size
        want = 2 * self.network.dim if self.contacts is not None else self.network.dim
        if features != want:
            raise ValueError(f"the network takes {features} inputs per token besides the displacement; this score "
                             f"feeds {want} ({'u and the contact terms' if self.contacts else 'u'})")

    @property
    def n_neighbours(self) -> int:
        return self.network.n_neighbours

    def inputs(self, force: Snapshot, g: Snapshot) -> Snapshot:
        """u = (g + μF/v0)/η of every particle."""
        return (g + self.mu * force / self.v0) / self.eta

    def _fields(self, x, g, u, particle, neighbours, box):
        if self.contacts is None:
            value, jac = self.network.particle_divergence(x, u, particle, neighbours, box)
        else:
            value, jac = self._contact_divergence(x, u, particle, neighbours, box)
        div = -x.shape[-1] + jnp.trace(jac) / self.eta**2
        return -g[particle] + value / self.eta, div

    def _contact_divergence(self, x, u, particle, neighbours, box):
        """N^i and ∂N^i/∂u^i with the contact terms, which carry u^i into every token."""
        dx, ut = self.network.tokens(x, u, particle, neighbours, box)

        def output(u_centre):
            tokens = ut.at[0].set(u_centre)
            return self.network.centre(dx, jnp.concatenate([tokens, self.contacts.terms(dx, tokens)], -1))[1]

        basis = jnp.eye(self.network.dim, dtype=u.dtype)
        value, columns = jax.vmap(lambda e: jax.jvp(output, (ut[0],), (e,)), out_axes=(None, 0))(basis)
        return value, columns.T

    @eqx.filter_jit
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
