"""The g-score of athermal AOUPs (ε = 0) in a harmonic potential, used as a prior for any potential.

With ε = 0, dx = b_x dt (b_x = μF + v0 g) and dg = −γg dt + √(2γ) dW. For a quadratic Φ with Hessian H
the stationary law is Gaussian and its g-score is, exactly,

    s_g = −g − (μ/(v0γ)) H b_x − (μ/v0) F,

so that v_g = −γ(g + s_g) = (μ/v0)(H b_x + γF). It is local (H b_x reaches the neighbours' neighbours)
and costs one forward-mode product of the force. Its per-particle divergence follows from
∂(H b_x)^i/∂g^i = v0 H_ii: ∇_{g^i}·s_g^i = −d + (μ/γ) ∇_{x^i}·F^i, so ∇_{g^i}·v_g^i = μΔ_{x^i}Φ and
the system EPR ∇·v vanishes particle by particle. (`lattice_exact` checks the formula against the
Fourier solution of the active solid.) For a non-quadratic Φ it is the score of the harmonic
approximation at each x: a prior whose remainder a network learns.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from activeflow.physics.systems import AOUPSystem

Snapshot = Float[Array, "N d"]


def harmonic_score_g(system: AOUPSystem, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Float[Array, " N"]]:
    """(s_g, ∇_{g^i}·s_g^i) of the harmonic formula at one snapshot (needs ε = 0 and v0 > 0)."""
    if system.eps != 0 or not system.v0 > 0:
        raise ValueError(f"the athermal score needs eps = 0 and v0 > 0; got eps={system.eps}, v0={system.v0}")
    s_g = -g - harmonic_v_g(system, x, g) / system.gamma
    div = -x.shape[-1] + (system.mu / system.gamma) * system.force_divergence(x)
    return s_g, div


def harmonic_v_g(system: AOUPSystem, x: Snapshot, g: Snapshot) -> Snapshot:
    """v_g = −γ(g + s_g) of the harmonic formula, (μ/v0)(H b_x + γF), without the cancellation of −g."""
    mu, v0, gamma = system.mu, system.v0, system.gamma
    force = system.force(x)
    _, force_along_b = jax.jvp(system.force, (x,), (mu * force + v0 * g,))  # = −H b_x
    return (mu / v0) * (gamma * force - force_along_b)


def epr_per_particle(v_g: Snapshot, gamma: float) -> Float[Array, ""]:
    """|v_g|²/γ averaged over the particles: Ṡ_tot per particle at ε = 0."""
    return jnp.mean(jnp.sum(v_g**2, axis=-1)) / gamma
