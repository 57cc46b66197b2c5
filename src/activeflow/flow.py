"""The probability-flow velocity v = b − D s and its exact per-particle divergences (DESIGN.md §2)."""

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from activeflow.divergence import ScoreFn, score_and_divergence
from activeflow.precision import full_precision
from activeflow.systems import AOUPSystem

Snapshot = Float[Array, "N d"]
log = logging.getLogger(__name__)


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


def velocity(
    system: AOUPSystem, x: Snapshot, g: Snapshot, s_x: Snapshot, s_g: Snapshot
) -> tuple[Snapshot, Snapshot]:
    """v = b − D s (6)."""
    b_x, b_g = system.drift(x, g)
    return b_x - system.Dx * s_x, b_g - system.Dg * s_g


def flow_fields(score_fn: ScoreFn, system: AOUPSystem, x: Snapshot, g: Snapshot) -> FlowFields:
    s_x, s_g, div_s_x, div_s_g = score_and_divergence(score_fn, x, g)
    v_x, v_g = velocity(system, x, g, s_x, s_g)
    div_b_x, div_b_g = system.drift_divergence(x, g)
    return FlowFields(
        s_x=s_x,
        s_g=s_g,
        div_s_x=div_s_x,
        div_s_g=div_s_g,
        v_x=v_x,
        v_g=v_g,
        div_v_x=div_b_x - system.Dx * div_s_x,
        div_v_g=div_b_g - system.Dg * div_s_g,
    )


@eqx.filter_jit
def _batch_fields(score_fn: ScoreFn, system: AOUPSystem, x: Float[Array, "B N d"], g: Float[Array, "B N d"]) -> FlowFields:
    return jax.vmap(lambda xi, gi: flow_fields(score_fn, system, xi, gi))(x, g)


# Forward passes evaluated at once (snapshots × N·d Jacobian columns): bounds the memory of a chunk.
PASSES_PER_CHUNK = 4096


@full_precision
def evaluate_fields(
    score_fn: ScoreFn, system: AOUPSystem, x: np.ndarray, g: np.ndarray, chunk: int | None = None
) -> dict[str, np.ndarray]:
    """`flow_fields` over many snapshots, in chunks of snapshots so memory stays bounded: each
    snapshot costs N·d forward-mode passes, so the default chunk holds PASSES_PER_CHUNK of them."""
    if chunk is None:
        chunk = max(PASSES_PER_CHUNK // (x.shape[1] * x.shape[2]), 1)
    return map_chunks(lambda xs, gs: _batch_fields(score_fn, system, xs, gs), x, g, chunk)._asdict()


def map_chunks(fn: Callable[[Any, Any], Any], x: np.ndarray, g: np.ndarray, chunk: int) -> Any:
    """fn(x, g) on chunks of snapshots (bounded memory); the results' leaves concatenated as numpy."""
    starts = range(0, x.shape[0], chunk)
    every = max(len(starts) // 10, 1)  # about ten progress lines for long evaluations
    parts, t0 = [], time.perf_counter()
    for n, i in enumerate(starts, 1):
        parts.append(jax.tree.map(np.asarray, fn(jnp.asarray(x[i : i + chunk], float), jnp.asarray(g[i : i + chunk], float))))
        if len(starts) > 1 and (n % every == 0 or n == len(starts)):
            elapsed = time.perf_counter() - t0
            log.info("evaluated %d/%d snapshots (%.1f s, %.0f s left)", min(i + chunk, x.shape[0]), x.shape[0],
                     elapsed, elapsed * (len(starts) - n) / n)
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *parts)
