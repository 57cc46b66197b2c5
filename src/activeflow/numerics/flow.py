"""The probability-flow velocity v = b − D s and its exact per-particle divergences."""

import logging
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float

from activeflow.chunking import map_chunks
from activeflow.numerics.divergence import ScoreFn, score_and_divergence
from activeflow.numerics.precision import full_precision
from activeflow.physics.systems import AOUPSystem

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


@eqx.filter_jit
def flow_lines(score_fn: ScoreFn, system: AOUPSystem, x: Float[Array, "P N d"], g: Float[Array, "P N d"], dt: float,
               steps_per_frame: int, n_frames: int) -> tuple[Float[Array, "F P N d"], Float[Array, "F P N d"]]:
    """Solutions of the probability flow Ṙ = v(R) (7) from P starting points, by classical Runge–Kutta
    steps of dt, recorded every `steps_per_frame` steps (frame 0: the start); x folded into the box."""

    def v(x, g):
        s_x, s_g = score_fn(x, g)
        return velocity(system, x, g, s_x, s_g)

    def rk4(state, _):
        x, g = state
        k1 = v(x, g)
        k2 = v(x + dt / 2 * k1[0], g + dt / 2 * k1[1])
        k3 = v(x + dt / 2 * k2[0], g + dt / 2 * k2[1])
        k4 = v(x + dt * k3[0], g + dt * k3[1])
        x = system.wrap(x + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]))
        g = g + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return (x, g), None

    def frame(state, _):
        state, _ = jax.lax.scan(jax.vmap(rk4, in_axes=((0, 0), None)), state, None, length=steps_per_frame)
        return state, state

    _, (xs, gs) = jax.lax.scan(frame, (x, g), None, length=n_frames - 1)
    return jax.numpy.concatenate([x[None], xs]), jax.numpy.concatenate([g[None], gs])
