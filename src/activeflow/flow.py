"""The probability-flow velocity v = b − D s and its exact per-particle divergences (DESIGN.md §2)."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from activeflow.divergence import ScoreFn, score_and_divergence
from activeflow.systems import AOUPSystem

Snapshot = Float[Array, "N d"]


class FlowFields(NamedTuple):
    """Everything per particle i of one snapshot; divergences are w.r.t. particle i's own coordinates."""

    s_x: Snapshot
    s_g: Snapshot
    div_s_x: Float[Array, " N"]  # ∇_{x^i}·s_x^i
    div_s_g: Float[Array, " N"]  # ∇_{g^i}·s_g^i
    v_x: Snapshot  # b_x − D_x s_x
    v_g: Snapshot  # b_g − D_g s_g
    div_v_x: Float[Array, " N"]  # ∇_{x^i}·v_x^i = ∇_{x^i}·b_x^i − D_x ∇_{x^i}·s_x^i
    div_v_g: Float[Array, " N"]  # ∇_{g^i}·v_g^i = −γd − D_g ∇_{g^i}·s_g^i


def flow_fields(score_fn: ScoreFn, system: AOUPSystem, x: Snapshot, g: Snapshot) -> FlowFields:
    s_x, s_g, div_s_x, div_s_g = score_and_divergence(score_fn, x, g)
    b_x, b_g = system.drift(x, g)
    div_b_x, div_b_g = system.drift_divergence(x, g)
    return FlowFields(
        s_x=s_x,
        s_g=s_g,
        div_s_x=div_s_x,
        div_s_g=div_s_g,
        v_x=b_x - system.Dx * s_x,
        v_g=b_g - system.Dg * s_g,
        div_v_x=div_b_x - system.Dx * div_s_x,
        div_v_g=div_b_g - system.Dg * div_s_g,
    )


@eqx.filter_jit
def _batch_fields(score_fn: ScoreFn, system: AOUPSystem, x: Float[Array, "B N d"], g: Float[Array, "B N d"]) -> FlowFields:
    return jax.vmap(lambda xi, gi: flow_fields(score_fn, system, xi, gi))(x, g)


def evaluate_fields(
    score_fn: ScoreFn, system: AOUPSystem, x: np.ndarray, g: np.ndarray, chunk: int = 4096
) -> dict[str, np.ndarray]:
    """`flow_fields` over many snapshots, in chunks of snapshots so memory stays bounded."""
    parts = []
    for start in range(0, x.shape[0], chunk):
        xs = jnp.asarray(x[start : start + chunk], float)
        gs = jnp.asarray(g[start : start + chunk], float)
        parts.append({k: np.asarray(v) for k, v in _batch_fields(score_fn, system, xs, gs)._asdict().items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in FlowFields._fields}
