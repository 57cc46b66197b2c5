"""Simulation of an AOUP system (Leimkuhler–Matthews or Euler–Maruyama for x, exact OU for g): many replicas under vmap, steps under lax.scan.

Samples are snapshots of independent replicas after a burn-in, `n_snapshots` per replica spaced
`t_between` apart; the replica index is kept so that standard errors can use replica (batch) means.
"""

import logging
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array, Float

from activeflow import io
from activeflow.seeding import derive_key
from activeflow.systems import AOUPSystem, make_system

log = logging.getLogger(__name__)
Batch = Float[Array, "R N d"]


INTEGRATORS = ("leimkuhler_matthews", "euler_maruyama")


def ou_step(system: AOUPSystem, key: jax.Array, g: Batch, dt: float) -> Batch:
    """Exact Ornstein–Uhlenbeck update of g: no time-step bias in its (Gaussian) law."""
    decay = jnp.exp(-system.gamma * dt)
    std = jnp.sqrt(system.Dg / system.gamma * (1 - decay**2))
    return decay * g + std * jax.random.normal(key, g.shape, g.dtype)


def x_step(
    system: AOUPSystem, x: Batch, g: Batch, noise: Batch, previous_noise: Batch, dt: float, integrator: str
) -> Batch:
    """Position update with standard normal noise ξ_{n+1} (and ξ_n for Leimkuhler–Matthews):
    Euler–Maruyama   x + b_x Δt + √(2D_xΔt) ξ_{n+1};
    Leimkuhler–Matthews x + b_x Δt + √(2D_xΔt) (ξ_n + ξ_{n+1})/2, second order in the invariant law
    of overdamped Langevin dynamics at the cost of one step."""
    b_x = jax.vmap(system.drift)(x, g)[0]
    if integrator == "euler_maruyama":
        kick = jnp.sqrt(2 * system.Dx * dt) * noise
    elif integrator == "leimkuhler_matthews":
        kick = jnp.sqrt(system.Dx * dt / 2) * (noise + previous_noise)
    else:
        raise ValueError(f"integrator={integrator!r}; allowed: {list(INTEGRATORS)}")
    return system.wrap(x + b_x * dt + kick)


@eqx.filter_jit
def advance(
    system: AOUPSystem,
    key: jax.Array,
    x: Batch,
    g: Batch,
    dt: float,
    n_steps: int,
    integrator: str = INTEGRATORS[0],
) -> tuple[Batch, Batch]:
    """n_steps steps of a batch of replicas: x by `integrator`, g by its exact OU step.
    (n_steps and integrator are static: one compilation per distinct value.)"""

    def body(carry, k):
        x, g, previous = carry
        kx, kg = jax.random.split(k)
        noise = jax.random.normal(kx, x.shape, x.dtype)
        x_new = x_step(system, x, g, noise, previous, dt, integrator)
        return (x_new, ou_step(system, kg, g, dt), noise), None

    k0, krun = jax.random.split(key)
    start = (x, g, jax.random.normal(k0, x.shape, x.dtype))
    (x, g, _), _ = jax.lax.scan(body, start, jax.random.split(krun, n_steps))
    return x, g


def n_steps_for(duration: float, dt: float) -> int:
    return max(int(round(duration / dt)), 0)


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


def samples_dataset(s: dict[str, Any]) -> xr.Dataset:
    """The samples contract: dims (sample, particle, dim); vars x, g, replica, time; and the burn-in's
    relaxation history (dim burn_in_time) with its drift z-scores as attributes."""
    dims = ("sample", "particle", "dim")
    data = {
        "x": (dims, s["x"], {"long_name": "position x (displacement for the ring)"}),
        "g": (dims, s["g"], {"long_name": "active force g"}),
        "replica": ("sample", s["replica"], {"long_name": "index of the independent replica"}),
        "time": ("sample", s["time"], {"long_name": "simulation time of the snapshot"}),
    }
    attrs = {}
    if "burn_in" in s:
        h = s["burn_in"]
        data["burn_in_time"] = ("burn_in_time", h["time"], {"long_name": "time since the start of the burn-in"})
        for name, meaning in (("x_sq", "Σ_i|x^i|²/N"), ("g_sq", "Σ_i|g^i|²/N")):
            data[f"burn_in_{name}"] = ("burn_in_time", h[name], {"long_name": f"replica mean of {meaning}"})
            data[f"burn_in_{name}_stderr"] = ("burn_in_time", h[f"{name}_stderr"], {"long_name": "its standard error"})
        attrs = {f"burn_in_drift_z_{k}": v for k, v in s["drift"].items()}
    return xr.Dataset(data, attrs=attrs)


def run(
    system_kind: str,
    parameters: dict[str, Any],
    simulation: dict[str, Any],
    seed: int,
    experiment: str,
    samples_path: str,
    heldout_path: str,
    trajectories_path: str,
) -> None:
    """Stage `simulate`: training samples, held-out samples (independent replicas) and trajectories."""
    system = make_system(system_kind, parameters)
    dt = float(simulation["dt"])
    provenance = dict(
        stage="simulate", experiment=experiment, seed=seed, system=system_kind,
        parameters=parameters, simulation=simulation,
    )
    for split, path, n_rep in (
        ("train", samples_path, simulation["n_replicas"]),
        ("heldout", heldout_path, simulation["n_heldout_replicas"]),
    ):
        log.info("simulating %s split: %d replicas of %s", split, n_rep, system_kind)
        s = sample(
            system, derive_key(seed, experiment, "simulate", split), int(n_rep),
            float(simulation["t_burn_in"]), int(simulation["n_snapshots"]),
            float(simulation["t_between"]), dt, simulation["integrator"],
        )
        ds = samples_dataset(s)
        io.write_netcdf(ds, path, provenance | {"split": split})
        log.info("wrote %s (%d samples)", path, ds.sizes["sample"])
    tr = simulation["trajectories"]
    t = trajectories(
        system, derive_key(seed, experiment, "simulate", "trajectories"), int(tr["n"]),
        float(simulation["t_burn_in"]), float(tr["duration"]), float(tr["t_record"]), dt,
        simulation["integrator"],
    )
    dims = ("trajectory", "time", "particle", "dim")
    ds = xr.Dataset({"x": (dims, t["x"]), "g": (dims, t["g"])}, coords={"time": t["time"]})
    io.write_netcdf(ds, trajectories_path, provenance | {"split": "trajectories"})
    log.info("wrote %s", trajectories_path)
