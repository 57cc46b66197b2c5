"""Training losses on a batch of snapshots: score matching (22), FPE residual (24), composite (25).

The divergences inside the loss are `exact` (every diagonal entry of the Jacobian, as the paper) or
`stochastic` (Hutchinson): with Rademacher probes ε over all coordinates, E[εᵀJε] = ∇·s and
E[εᵀDJε] = D_x∇_x·s_x + D_g∇_g·s_g, one forward-mode product per probe instead of one per
coordinate. The squared FPE residual is estimated by the product of two residual estimates with
independent probes, which is unbiased (the square of one estimate would add its variance). With the
Boltzmann shift (`ScoreModel.shift`) only the network is probed: the shift's divergence is known in
closed form, and its Jacobian, the stiff pair Hessian over ε, would otherwise dominate the variance.
Evaluation (diagnostics, EPR) always uses the exact divergences.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from activeflow.models.score_model import ScoreModel
from activeflow.numerics.divergence import ScoreFn
from activeflow.numerics.flow import flow_fields, velocity
from activeflow.physics.systems import AOUPSystem

Batch = Float[Array, "B N d"]


class LossTerms(NamedTuple):
    score_matching: Float[Array, ""]  # E[|s|² + 2∇·s]; equals −E|s|² at the optimum
    fpe_residual: Float[Array, ""]  # E[(∇·v + v·s)²]
    total: Float[Array, ""]  # λ1 L_sm + λ2 L_FPE


def snapshot_terms(
    score_fn: ScoreFn, system: AOUPSystem, x: Float[Array, "N d"], g: Float[Array, "N d"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """(|s|² + 2∇·s, ∇·v + v·s) for one snapshot, with exact divergences."""
    f = flow_fields(score_fn, system, x, g)
    sq = jnp.sum(f.s_x**2) + jnp.sum(f.s_g**2)
    div_s = jnp.sum(f.div_s_x) + jnp.sum(f.div_s_g)
    residual = jnp.sum(f.div_v_x + f.div_v_g) + jnp.sum(f.v_x * f.s_x) + jnp.sum(f.v_g * f.s_g)
    return sq + 2 * div_s, residual


DIVERGENCES = ("exact", "stochastic")


def stochastic_snapshot_terms(
    score_fn: ScoreFn,
    system: AOUPSystem,
    x: Float[Array, "N d"],
    g: Float[Array, "N d"],
    key: jax.Array,
    n_probes: int,
) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
    """(|s|² + 2∇·s, r1, r2) for one snapshot with Hutchinson divergences; r1 and r2 are residual
    estimates from two independent sets of `n_probes` probes, so E[r1·r2] = (∇·v + v·s)².

    For a `ScoreModel` with the shift, the probes see its network only and the shift's traces are
    added exactly (a control variate: the same mean, far less variance)."""
    shifted = isinstance(score_fn, ScoreModel) and score_fn.shift
    (s_x, s_g), tangent = jax.linearize(score_fn.network if shifted else score_fn, x, g)
    div_b = sum(jnp.sum(d) for d in system.drift_divergence(x, g))
    known_j = known_dj = 0.0
    if shifted:
        b_x, b_g = score_fn.known_score(x, g)
        s_x, s_g = s_x + b_x, s_g + b_g
        div_x, div_g = (jnp.sum(d) for d in score_fn.known_divergence(x, g))
        known_j, known_dj = div_x + div_g, system.Dx * div_x + system.Dg * div_g

    def probe(k):
        kx, kg = jax.random.split(k)
        e_x = jax.random.rademacher(kx, x.shape, x.dtype)
        e_g = jax.random.rademacher(kg, g.shape, g.dtype)
        t_x, t_g = tangent(e_x, e_g)
        ex_tx, eg_tg = jnp.sum(e_x * t_x), jnp.sum(e_g * t_g)
        return ex_tx + eg_tg, system.Dx * ex_tx + system.Dg * eg_tg

    trace_j, trace_dj = jax.vmap(probe)(jax.random.split(key, 2 * n_probes))
    v_x, v_g = velocity(system, x, g, s_x, s_g)
    v_dot_s = jnp.sum(v_x * s_x) + jnp.sum(v_g * s_g)
    sq = jnp.sum(s_x**2) + jnp.sum(s_g**2)
    r1 = div_b - known_dj - jnp.mean(trace_dj[:n_probes]) + v_dot_s
    r2 = div_b - known_dj - jnp.mean(trace_dj[n_probes:]) + v_dot_s
    return sq + 2 * (known_j + jnp.mean(trace_j)), r1, r2


def composite_loss(
    score_fn: ScoreFn,
    system: AOUPSystem,
    x: Batch,
    g: Batch,
    lambda_sm: float,
    lambda_fpe: float,
    divergence: str = "exact",
    key: jax.Array | None = None,
    n_probes: int = 1,
) -> LossTerms:
    if divergence == "exact":
        sm, residual = jax.vmap(lambda xi, gi: snapshot_terms(score_fn, system, xi, gi))(x, g)
        fpe = residual**2
    elif divergence == "stochastic":
        if key is None:
            raise ValueError("the stochastic divergence needs a PRNG key")
        keys = jax.random.split(key, x.shape[0])
        sm, r1, r2 = jax.vmap(lambda xi, gi, ki: stochastic_snapshot_terms(score_fn, system, xi, gi, ki, n_probes))(
            x, g, keys
        )
        fpe = r1 * r2
    else:
        raise ValueError(f"training.divergence={divergence!r}; allowed: {list(DIVERGENCES)}")
    l_sm, l_fpe = jnp.mean(sm), jnp.mean(fpe)
    return LossTerms(l_sm, l_fpe, lambda_sm * l_sm + lambda_fpe * l_fpe)
