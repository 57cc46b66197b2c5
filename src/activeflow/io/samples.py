"""The samples files (`samples.nc`, `heldout.nc`, `trajectories.nc`, MIPS `samples.nc`) as xarray
Datasets, from the arrays the samplers return."""

from typing import Any

import numpy as np
import xarray as xr

from activeflow.io.cf import LENGTH, ONE, TIME, attrs

SNAPSHOT = ("sample", "particle", "dim")


def samples_dataset(s: dict[str, Any]) -> xr.Dataset:
    """The samples contract: dims (sample, particle, dim); vars x, g, replica, time; and the burn-in's
    relaxation history (dim burn_in_time) with its drift z-scores as attributes."""
    dims = SNAPSHOT
    data = {
        "x": (dims, s["x"], attrs("position x (displacement for the ring)", LENGTH)),
        "g": (dims, s["g"], attrs("active force g", ONE)),
        "replica": ("sample", s["replica"], attrs("index of the independent replica", ONE)),
        "time": ("sample", s["time"], attrs("simulation time of the snapshot", TIME)),
    }
    extra = {}
    if "burn_in" in s:
        h = s["burn_in"]
        data["burn_in_time"] = ("burn_in_time", h["time"], attrs("time since the start of the burn-in", TIME))
        for name, meaning, units in (("x_sq", "Σ_i|x^i|²/N", f"{LENGTH}2"), ("g_sq", "Σ_i|g^i|²/N", ONE)):
            data[f"burn_in_{name}"] = ("burn_in_time", h[name], attrs(f"replica mean of {meaning}", units))
            data[f"burn_in_{name}_stderr"] = ("burn_in_time", h[f"{name}_stderr"],
                                              attrs(f"standard error of the replica mean of {meaning}", units))
        extra = {f"burn_in_drift_z_{k}": v for k, v in s["drift"].items()}
    return xr.Dataset(data, attrs=extra)


def trajectories_dataset(t: dict[str, np.ndarray]) -> xr.Dataset:
    """Trajectories (trajectory, time, particle, dim) of `sampling.trajectories`."""
    dims = ("trajectory", "time", "particle", "dim")
    return xr.Dataset(
        {"x": (dims, t["x"], attrs("position x (displacement for the ring)", LENGTH)),
         "g": (dims, t["g"], attrs("active force g", ONE))},
        coords={"time": ("time", t["time"], attrs("simulation time", TIME))},
    )


def mips_samples_dataset(s: dict[str, np.ndarray], system: dict[str, Any]) -> xr.Dataset:
    """MIPS runs of `mips_sampling.simulate_runs`: x, g, run, time and the largest-cluster fraction
    per snapshot, and each run's equilibration history."""
    return xr.Dataset(
        {
            "x": (SNAPSHOT, s["x"], attrs("position, folded into [-box/2, box/2)", LENGTH)),
            "g": (SNAPSHOT, s["g"], attrs("active force g", ONE)),
            "run": ("sample", s["run"], attrs("independent run", ONE)),
            "time": ("sample", s["time"], attrs("simulation time", TIME)),
            "largest_cluster_fraction": ("sample", s["largest_cluster_fraction"],
                                         attrs("fraction of the particles in the largest cluster", ONE)),
            "equilibration_time": ("check", s["equilibration_time"], attrs("time along the equilibration", TIME)),
            "equilibration_cluster_fraction": (("run", "check"), s["equilibration_cluster_fraction"],
                                               attrs("largest-cluster fraction along the equilibration", ONE)),
        },
        attrs=system,
    )


def lattice_samples_dataset(s: dict[str, np.ndarray], system: dict[str, Any]) -> xr.Dataset:
    """Active-solid runs of `lattice_sampling.simulate_lattice`: x, g, run and time per snapshot."""
    return xr.Dataset(
        {
            "x": (SNAPSHOT, s["x"], attrs("position, folded into [-box/2, box/2)", LENGTH)),
            "g": (SNAPSHOT, s["g"], attrs("active force g", ONE)),
            "run": ("sample", s["run"], attrs("independent run", ONE)),
            "time": ("sample", s["time"], attrs("simulation time", TIME)),
        },
        attrs=system,
    )
