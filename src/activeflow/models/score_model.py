"""`ScoreModel`: a score network plus, optionally, a known score it corrects (the shift): the Boltzmann
score (F.3.2) or a linear-feature score fitted in closed form before training (`models.features`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from activeflow.models.features import LinearFeatureScore, local_fields
from activeflow.numerics.divergence import score_and_divergence
from activeflow.physics.systems import AOUPSystem

Snapshot = Float[Array, "N d"]


class ScoreModel(eqx.Module):
    """The learned score: s = network(x, g), plus the known score if `shift` (so that training starts
    near it instead of learning it). The known score is the system's Boltzmann score, or `prior` when
    given: its coefficients are fitted in closed form and then held fixed (no gradient reaches them)."""

    network: eqx.Module
    system: AOUPSystem
    shift: bool = eqx.field(static=True)
    prior: LinearFeatureScore | None = None

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        s_x, s_g = self.network(x, g)
        if self.shift:
            b_x, b_g = self.known_score(x, g)
            s_x, s_g = s_x + b_x, s_g + b_g
        return s_x, s_g

    def known_score(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        """The shift: `prior`, or else the system's Boltzmann score (used only with `shift`)."""
        if self.prior is not None:
            return jax.lax.stop_gradient(self.prior)(x, g)
        return self.system.boltzmann_score(x, g)

    def known_divergence(self, x: Snapshot, g: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """Per-particle divergences (∇_{x^i}·, ∇_{g^i}·) of `known_score`, exact."""
        if self.prior is not None:
            return jax.lax.stop_gradient(self.prior).divergence(x, g)
        return self.system.boltzmann_score_divergence(x)

    @property
    def has_fields(self) -> bool:
        """Whether `fields` knows a cheaper exact divergence than differentiating the whole model: with a
        fitted prior, whose per-particle divergence is local."""
        return self.shift and self.prior is not None

    def fields(self, x: Snapshot, g: Snapshot):
        """(s_x, s_g, ∇_{x^i}·s_x^i, ∇_{g^i}·s_g^i), exact, of a model with a prior: a local network and
        the prior together particle by particle; any other network by forward-mode products through the
        network alone, the prior's divergence added in closed form."""
        if hasattr(self.network, "particle"):
            return self._local_fields(x, g)
        from_network = score_and_divergence(self.network, x, g)
        known = (*self.known_score(x, g), *self.known_divergence(x, g))
        return tuple(a + b for a, b in zip(from_network, known))

    def _local_fields(self, x: Snapshot, g: Snapshot):
        prior = jax.lax.stop_gradient(self.prior)

        def particle(xi, gi, xs, gs, i, forces):
            phi = prior.features.particle(xi, gi, xs, gs, i, forces)
            known = jnp.concatenate([prior.theta_x @ phi, prior.theta_g @ phi])
            return known + self.network.particle(xi, gi, xs, gs, i, forces)

        return local_fields(particle, prior.features.pair_forces(x), x, g)
