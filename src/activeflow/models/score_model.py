"""`ScoreModel`: a score network plus, optionally, the Boltzmann shift (F.3.2)."""

import equinox as eqx
from jaxtyping import Array, Float

from activeflow.physics.systems import AOUPSystem

Snapshot = Float[Array, "N d"]


class ScoreModel(eqx.Module):
    """The learned score: s = network(x, g), plus the Boltzmann score of the system if `shift`
    (so that training starts near the equilibrium score instead of learning its O(1/ε) part)."""

    network: eqx.Module
    system: AOUPSystem
    shift: bool = eqx.field(static=True)

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        s_x, s_g = self.network(x, g)
        if self.shift:
            b_x, b_g = self.known_score(x, g)
            s_x, s_g = s_x + b_x, s_g + b_g
        return s_x, s_g

    def known_score(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        """The shift: the system's Boltzmann score (used only with `shift`)."""
        return self.system.boltzmann_score(x, g)

    def known_divergence(self, x: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """Per-particle divergences of `known_score`, in closed form."""
        return self.system.boltzmann_score_divergence(x)
