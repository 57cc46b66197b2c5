"""Training losses on a batch of snapshots: score matching (22), FPE residual (24), composite (25)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from activeflow.divergence import ScoreFn
from activeflow.flow import flow_fields
from activeflow.systems import AOUPSystem

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


def composite_loss(
    score_fn: ScoreFn, system: AOUPSystem, x: Batch, g: Batch, lambda_sm: float, lambda_fpe: float
) -> LossTerms:
    sm, residual = jax.vmap(lambda xi, gi: snapshot_terms(score_fn, system, xi, gi))(x, g)
    l_sm, l_fpe = jnp.mean(sm), jnp.mean(residual**2)
    return LossTerms(l_sm, l_fpe, lambda_sm * l_sm + lambda_fpe * l_fpe)
