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


def advance_logged(
    system: AOUPSystem, key: jax.Array, x: Batch, g: Batch, dt: float, n_steps: int, integrator: str, what: str
) -> tuple[Batch, Batch]:
    """`advance` in ~10 chunks with a progress line each (the same compiled chunk is reused)."""
    chunk = max(n_steps // 10, 1)
    done, start = 0, time.perf_counter()
    while done < n_steps:
        todo = min(chunk, n_steps - done)
        key, sub = jax.random.split(key)
        x, g = advance(system, sub, x, g, dt, todo, integrator)
        x.block_until_ready()
        done += todo
        rate = done / (time.perf_counter() - start)
        log.info("%s: step %d/%d (%.0f steps/s, %.0f s left)", what, done, n_steps, rate, (n_steps - done) / rate)
    return x, g


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
    x, g = advance_logged(system, kburn, x, g, dt, n_steps_for(t_burn_in, dt), integrator, "burn-in")
    xs, gs = record(system, ksnap, x, g, dt, n_steps_for(t_between, dt), n_snapshots, integrator)
    # sample index = snapshot * n_replicas + replica
    replica = np.tile(np.arange(n_replicas), n_snapshots)
    times = np.repeat(t_burn_in + t_between * np.arange(n_snapshots), n_replicas)
    return dict(x=xs.reshape(-1, *xs.shape[2:]), g=gs.reshape(-1, *gs.shape[2:]), replica=replica, time=times)


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


def samples_dataset(s: dict[str, np.ndarray]) -> xr.Dataset:
    """The samples contract: dims (sample, particle, dim); vars x, g, replica, time."""
    dims = ("sample", "particle", "dim")
    return xr.Dataset(
        {
            "x": (dims, s["x"], {"long_name": "position x (displacement for the ring)"}),
            "g": (dims, s["g"], {"long_name": "active force g"}),
            "replica": ("sample", s["replica"], {"long_name": "index of the independent replica"}),
            "time": ("sample", s["time"], {"long_name": "simulation time of the snapshot"}),
        }
    )


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
