"""MIPS snapshots as in App. F.5 (stages `simulate_mips` and `simulate_transfer`).

Each of `n_runs` independent runs starts from particles placed uniformly in the box and g ~ N(0, 1),
is equilibrated to t_equilibrate (the paper: 1/γ), and then records `n_snapshots` snapshots spaced by
t_between (the paper: τ = 20). Whether a dense phase has formed is checked with the largest-cluster
fraction (periodic distances, `clusters.py`), logged along the equilibration and kept in the file; a run
whose largest cluster holds less than `min_cluster_fraction` of the particles gets a warning, since its
snapshots show a gas, not MIPS.

Transfer simulations (§7.3, §7.5) are the same runs at another N or packing fraction φ, all other
parameters unchanged.
"""

import logging
from typing import Any

import jax
import numpy as np

from activeflow.numerics.clusters import largest_cluster_fraction
from activeflow.numerics.integrators import n_steps_for, simulate_mips
from activeflow.physics.mips import MIPS

log = logging.getLogger(__name__)
# Equilibration is simulated in this many segments, with the largest-cluster fraction after each.
CLUSTER_CHECKS = 10


def make_mips(parameters: dict[str, Any], simulation: dict[str, Any], n_particles: int | None = None,
              phi: float | None = None) -> MIPS:
    """The config's MIPS system, optionally at another N or φ (transfer)."""
    p = dict(parameters)
    if n_particles is not None:
        p["n_particles"] = int(n_particles)
    if phi is not None:
        p["phi"] = float(phi)
    try:
        return MIPS(**p, dim=2, force_tolerance=float(simulation["force_tolerance"]))
    except TypeError as err:
        raise ValueError(f"bad parameters for system 'mips': {err}") from None


def attributes(system: MIPS) -> dict[str, float | int]:
    """What a figure or a notebook needs to draw a snapshot, as file attributes."""
    return dict(box=system.box, phi=system.phi, n_particles=system.n_particles, a=system.a,
                v0=system.v0, gamma=system.gamma)


def equilibrated_run(system: MIPS, key: jax.Array, simulation: dict[str, Any], what: str):
    """One run: equilibrate, then record. Returns x, g (S, N, d), the recording times, and the
    equilibration's cluster history (times, largest-cluster fractions)."""
    dt, skin, contact = float(simulation["dt"]), float(simulation["skin"]), float(simulation["cluster_contact"])
    k0, kg, keq, krec = jax.random.split(key, 4)
    x = system.initial_positions(k0, 1)[0]
    g = jax.random.normal(kg, x.shape, x.dtype)
    n_eq = n_steps_for(float(simulation["t_equilibrate"]), dt)
    bounds = np.unique(np.linspace(0, n_eq, CLUSTER_CHECKS + 1).round().astype(int))
    times, fractions, search = [0.0], [largest_cluster_fraction(np.asarray(x), system.box, contact)], None
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        x, g, search = simulate_mips(system, jax.random.fold_in(keq, i), x, g, dt, int(stop - start),
                                     skin=skin, search=search, what=f"{what} equilibration")
        times.append(stop * dt)
        fractions.append(largest_cluster_fraction(np.asarray(x), system.box, contact))
        log.info("%s: t = %g, largest cluster %.3f of the particles", what, times[-1], fractions[-1])
    n_between = n_steps_for(float(simulation["t_between"]), dt)
    xs, gs = [np.asarray(x)], [np.asarray(g)]
    for s in range(1, int(simulation["n_snapshots"])):
        x, g, search = simulate_mips(system, jax.random.fold_in(krec, s), x, g, dt, n_between,
                                     skin=skin, search=search, what=f"{what} snapshot {s + 1}")
        xs.append(np.asarray(x))
        gs.append(np.asarray(g))
    t_rec = n_eq * dt + np.arange(len(xs)) * n_between * dt
    return np.stack(xs), np.stack(gs), t_rec, np.array(times), np.array(fractions)


def simulate_runs(system: MIPS, key: jax.Array, simulation: dict[str, Any], label: str) -> dict[str, np.ndarray]:
    """All runs of one system: x, g (sample, particle, dim), run and time per snapshot, the
    largest-cluster fraction of each snapshot, and each run's equilibration history (`io.samples`
    makes the samples file of it)."""
    n_runs, contact = int(simulation["n_runs"]), float(simulation["cluster_contact"])
    runs = [equilibrated_run(system, jax.random.fold_in(key, r), simulation, f"{label} run {r + 1}/{n_runs}")
            for r in range(n_runs)]
    x = np.concatenate([r[0] for r in runs])
    g = np.concatenate([r[1] for r in runs])
    fractions = np.array([largest_cluster_fraction(s, system.box, contact) for s in x])
    lowest = min(r[4][-1] for r in runs)
    if lowest < simulation["min_cluster_fraction"]:
        log.warning("%s: after equilibration the largest cluster of some run holds only %.3f of the "
                    "particles (< simulation.min_cluster_fraction = %g): no dense phase has formed; "
                    "increase simulation.t_equilibrate (or check the parameters are in the MIPS regime)",
                    label, lowest, simulation["min_cluster_fraction"])
    n_snap = runs[0][0].shape[0]
    return dict(
        x=x, g=g, run=np.repeat(np.arange(n_runs), n_snap), time=np.concatenate([r[2] for r in runs]),
        largest_cluster_fraction=fractions, equilibration_time=runs[0][3],
        equilibration_cluster_fraction=np.stack([r[4] for r in runs]),
    )


def trajectory(system: MIPS, key: jax.Array, x: np.ndarray, g: np.ndarray, dt: float, every: float,
               n_frames: int, what: str = "trajectory") -> tuple[np.ndarray, np.ndarray]:
    """`n_frames` snapshots (frames, particle, dim) `every` apart by the simulation's own integrator, the
    first the start (x, g); positions folded into [-box/2, box/2)."""
    xs, gs, search = [np.asarray(x)], [np.asarray(g)], None
    n_steps = n_steps_for(every, dt)
    for k in range(1, n_frames):
        x, g, search = simulate_mips(system, jax.random.fold_in(key, k), x, g, dt, n_steps, search=search, what=what)
        xs.append(np.asarray(system.wrap(x)))
        gs.append(np.asarray(g))
        if k % max(n_frames // 10, 1) == 0:
            log.info("%s: frame %d/%d", what, k + 1, n_frames)
    return np.stack(xs), np.stack(gs)
