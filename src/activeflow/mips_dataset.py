"""Stages `simulate_mips` and `simulate_transfer`: MIPS snapshots as in App. F.5.

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
import xarray as xr

from activeflow import io, mips
from activeflow.clusters import largest_cluster_fraction
from activeflow.seeding import derive_key
from activeflow.simulate import n_steps_for

log = logging.getLogger(__name__)
# Equilibration is simulated in this many segments, with the largest-cluster fraction after each.
CLUSTER_CHECKS = 10


def make_mips(parameters: dict[str, Any], simulation: dict[str, Any], n_particles: int | None = None,
              phi: float | None = None) -> mips.MIPS:
    """The config's MIPS system, optionally at another N or φ (transfer)."""
    p = dict(parameters)
    if n_particles is not None:
        p["n_particles"] = int(n_particles)
    if phi is not None:
        p["phi"] = float(phi)
    try:
        return mips.MIPS(**p, dim=2, force_tolerance=float(simulation["force_tolerance"]))
    except TypeError as err:
        raise ValueError(f"bad parameters for system 'mips': {err}") from None


def attributes(system: mips.MIPS) -> dict[str, float | int]:
    """What a figure or a notebook needs to draw a snapshot, as file attributes."""
    return dict(box=system.box, phi=system.phi, n_particles=system.n_particles, a=system.a,
                v0=system.v0, gamma=system.gamma)


def equilibrated_run(system: mips.MIPS, key: jax.Array, simulation: dict[str, Any], what: str):
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
        x, g, search = mips.simulate(system, jax.random.fold_in(keq, i), x, g, dt, int(stop - start),
                                     skin=skin, search=search, what=f"{what} equilibration")
        times.append(stop * dt)
        fractions.append(largest_cluster_fraction(np.asarray(x), system.box, contact))
        log.info("%s: t = %g, largest cluster %.3f of the particles", what, times[-1], fractions[-1])
    n_between = n_steps_for(float(simulation["t_between"]), dt)
    xs, gs = [np.asarray(x)], [np.asarray(g)]
    for s in range(1, int(simulation["n_snapshots"])):
        x, g, search = mips.simulate(system, jax.random.fold_in(krec, s), x, g, dt, n_between,
                                     skin=skin, search=search, what=f"{what} snapshot {s + 1}")
        xs.append(np.asarray(x))
        gs.append(np.asarray(g))
    t_rec = n_eq * dt + np.arange(len(xs)) * n_between * dt
    return np.stack(xs), np.stack(gs), t_rec, np.array(times), np.array(fractions)


def simulate_runs(system: mips.MIPS, key: jax.Array, simulation: dict[str, Any], label: str) -> xr.Dataset:
    """All runs of one system as a samples dataset: dims (sample, particle, dim) with x, g, run, time,
    the largest-cluster fraction of each snapshot, and each run's equilibration history."""
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
    dims = ("sample", "particle", "dim")
    n_snap = runs[0][0].shape[0]
    return xr.Dataset(
        {
            "x": (dims, x, {"long_name": "position, folded into [-box/2, box/2)"}),
            "g": (dims, g, {"long_name": "active force g"}),
            "run": ("sample", np.repeat(np.arange(n_runs), n_snap), {"long_name": "independent run"}),
            "time": ("sample", np.concatenate([r[2] for r in runs]), {"long_name": "simulation time"}),
            "largest_cluster_fraction": ("sample", fractions,
                                         {"long_name": "fraction of the particles in the largest cluster"}),
            "equilibration_time": ("check", runs[0][3], {"long_name": "time along the equilibration"}),
            "equilibration_cluster_fraction": (("run", "check"), np.stack([r[4] for r in runs]),
                                               {"long_name": "largest-cluster fraction along the equilibration"}),
        },
        attrs=attributes(system) | {"cluster_contact": contact},
    )


def run(parameters: dict[str, Any], simulation: dict[str, Any], seed: int, samples_path: str,
        n_particles: int | None = None, phi: float | None = None) -> None:
    """Stage `simulate_mips` (the training set; N and φ None) or `simulate_transfer` (N, φ given)."""
    system = make_mips(parameters, simulation, n_particles, phi)
    transfer = n_particles is not None or phi is not None
    label = f"N={system.n_particles} phi={system.phi:g}" + (" (transfer)" if transfer else "")
    purpose = f"transfer n{system.n_particles} phi{system.phi:g}" if transfer else "dataset"
    log.info("%s: box L = %.4g, force cut-off %.4g, %d runs to t = %g, then %d snapshots every %g",
             label, system.box, system.cutoff, simulation["n_runs"], simulation["t_equilibrate"],
             simulation["n_snapshots"], simulation["t_between"])
    ds = simulate_runs(system, derive_key(seed, "mips", "simulate", purpose), simulation, label)
    info = dict(stage="simulate", experiment="mips", seed=seed, system="mips", parameters=parameters,
                simulation=simulation, n_particles=system.n_particles, phi=system.phi)
    io.write_netcdf(ds, samples_path, info)
    log.info("wrote %s (%d snapshots; largest cluster %.3f to %.3f of the particles)", samples_path,
             ds.sizes["sample"], float(ds.largest_cluster_fraction.min()), float(ds.largest_cluster_fraction.max()))
