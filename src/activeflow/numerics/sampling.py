"""Samples of an AOUP system: many replicas stepped in parallel (`integrators`) through a burn-in whose
relaxation is followed, then snapshots.

Samples are snapshots of independent replicas after a burn-in, `n_snapshots` per replica spaced
`t_between` apart; the replica index is kept so that standard errors can use replica (batch) means.
"""

import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from activeflow.numerics.integrators import INTEGRATORS, advance, n_steps_for
from activeflow.physics.systems import AOUPSystem

log = logging.getLogger(__name__)
Batch = Float[Array, "R N d"]


def relaxation_observables(system: AOUPSystem, x: Batch, g: Batch) -> dict[str, np.ndarray]:
    """Per-replica slow observables whose drift during burn-in shows the chain is not yet stationary:
    the mean squared position Σ_i|x^i|²/N (the cluster's size in a trap; minimum image in a box)
    and the mean squared active force Σ_i|g^i|²/N."""
    x = system.wrap(x)
    return dict(
        x_sq=np.asarray(jnp.sum(x**2, axis=(-2, -1)) / x.shape[-2]),
        g_sq=np.asarray(jnp.sum(g**2, axis=(-2, -1)) / g.shape[-2]),
    )


def advance_logged(
    system: AOUPSystem, key: jax.Array, x: Batch, g: Batch, dt: float, n_steps: int, integrator: str, what: str
) -> tuple[Batch, Batch, dict[str, np.ndarray]]:
    """`advance` in ~10 chunks with a progress line each (the same compiled chunk is reused).
    Also returns the relaxation history: after each chunk, the replica mean and standard error of
    every `relaxation_observables` (arrays over chunks, with `time`)."""
    chunk = max(n_steps // 10, 1)
    done, start = 0, time.perf_counter()
    history: dict[str, list[float]] = {"time": []}

    def observe() -> None:
        history["time"].append(done * dt)
        for name, values in relaxation_observables(system, x, g).items():
            history.setdefault(name, []).append(float(values.mean()))
            history.setdefault(f"{name}_stderr", []).append(float(values.std(ddof=1) / np.sqrt(values.size)))

    observe()
    while done < n_steps:
        todo = min(chunk, n_steps - done)
        key, sub = jax.random.split(key)
        x, g = advance(system, sub, x, g, dt, todo, integrator)
        x.block_until_ready()
        done += todo
        observe()
        rate = done / (time.perf_counter() - start)
        log.info(
            "%s: step %d/%d (%.0f steps/s, %.0f s left); <|x|²> = %.4g, <|g|²> = %.4g",
            what, done, n_steps, rate, (n_steps - done) / rate, history["x_sq"][-1], history["g_sq"][-1],
        )
    return x, g, {k: np.asarray(v) for k, v in history.items()}


# |z| above which the burn-in is reported as too short (a clear drift, not a fluctuation).
DRIFT_Z = 4.0


def burn_in_drift(history: dict[str, np.ndarray]) -> dict[str, float]:
    """z-score of the change of each relaxation observable over the second half of the burn-in:
    (value at the end − value half-way) / combined standard error. A stationary chain gives |z| of
    order 1; a chain still relaxing gives a growing |z| as the replica count grows. (Same replicas at
    both times, positively correlated, so the combined error overstates the noise: conservative.)"""
    t = history["time"]
    if t.size < 3:
        return {}
    half = int(np.searchsorted(t, t[-1] / 2))
    out = {}
    for name in ("x_sq", "g_sq"):
        m, se = history[name], history[f"{name}_stderr"]
        err = np.hypot(se[-1], se[half])
        out[name] = float((m[-1] - m[half]) / err) if err > 0 else 0.0
    return out


def record(
    system: AOUPSystem, key: jax.Array, x: Batch, g: Batch, dt: float, every: int, count: int, integrator: str
) -> tuple[np.ndarray, np.ndarray]:
    """`count` snapshots of a batch of replicas: the current state, then one every `every` steps.
    Returns (x, g) of shape (count, R, N, d)."""
    xs, gs = [np.asarray(x)], [np.asarray(g)]
    for k in jax.random.split(key, max(count - 1, 0)):
        x, g = advance(system, k, x, g, dt, every, integrator)
        xs.append(np.asarray(x))
        gs.append(np.asarray(g))
    return np.stack(xs), np.stack(gs)


def sample(
    system: AOUPSystem,
    key: jax.Array,
    n_replicas: int,
    t_burn_in: float,
    n_snapshots: int,
    t_between: float,
    dt: float,
    integrator: str = INTEGRATORS[0],
) -> dict[str, np.ndarray]:
    """Snapshots (x, g) of shape (n_replicas·n_snapshots, N, d) with their replica index and time."""
    k0, kburn, ksnap = jax.random.split(key, 3)
    x, g = system.initial_state(k0, n_replicas)
    x, g, history = advance_logged(system, kburn, x, g, dt, n_steps_for(t_burn_in, dt), integrator, "burn-in")
    drift = burn_in_drift(history)
    for name, z in drift.items():
        level = logging.WARNING if abs(z) > DRIFT_Z else logging.INFO
        log.log(level, "stationarity: <%s> changed by z = %+.2f over the second half of the burn-in%s",
                name, z, " -- still relaxing: increase simulation.t_burn_in" if abs(z) > DRIFT_Z else " (stationary)")
    xs, gs = record(system, ksnap, x, g, dt, n_steps_for(t_between, dt), n_snapshots, integrator)
    # sample index = snapshot * n_replicas + replica
    replica = np.tile(np.arange(n_replicas), n_snapshots)
    times = np.repeat(t_burn_in + t_between * np.arange(n_snapshots), n_replicas)
    return dict(
        x=xs.reshape(-1, *xs.shape[2:]), g=gs.reshape(-1, *gs.shape[2:]), replica=replica, time=times,
        burn_in=history, drift=drift,
    )


def trajectories(
    system: AOUPSystem,
    key: jax.Array,
    n: int,
    t_burn_in: float,
    duration: float,
    t_record: float,
    dt: float,
    integrator: str = INTEGRATORS[0],
) -> dict[str, np.ndarray]:
    """n stochastic trajectories recorded every t_record (for phase-portrait figures)."""
    k0, kburn, krun = jax.random.split(key, 3)
    x, g = system.initial_state(k0, n)
    x, g = advance(system, kburn, x, g, dt, n_steps_for(t_burn_in, dt), integrator)
    every = max(n_steps_for(t_record, dt), 1)
    n_records = n_steps_for(duration, dt) // every + 1
    xs, gs = record(system, krun, x, g, dt, every, n_records, integrator)
    return dict(x=xs.swapaxes(0, 1), g=gs.swapaxes(0, 1), time=np.arange(n_records) * every * dt)
