"""The samples files (`samples.nc`, `heldout.nc`, `trajectories.nc`, MIPS `samples.nc`) as xarray
Datasets, from the arrays the samplers return."""

from typing import Any

import numpy as np
import xarray as xr

SNAPSHOT = ("sample", "particle", "dim")


def samples_dataset(s: dict[str, Any]) -> xr.Dataset:
    """The samples contract: dims (sample, particle, dim); vars x, g, replica, time; and the burn-in's
    relaxation history (dim burn_in_time) with its drift z-scores as attributes."""
    dims = SNAPSHOT
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


def trajectories_dataset(t: dict[str, np.ndarray]) -> xr.Dataset:
    """Trajectories (trajectory, time, particle, dim) of `sampling.trajectories`."""
    dims = ("trajectory", "time", "particle", "dim")
    return xr.Dataset({"x": (dims, t["x"]), "g": (dims, t["g"])}, coords={"time": t["time"]})


def mips_samples_dataset(s: dict[str, np.ndarray], attrs: dict[str, Any]) -> xr.Dataset:
    """MIPS runs of `mips_sampling.simulate_runs`: x, g, run, time and the largest-cluster fraction
    per snapshot, and each run's equilibration history."""
    return xr.Dataset(
        {
            "x": (SNAPSHOT, s["x"], {"long_name": "position, folded into [-box/2, box/2)"}),
            "g": (SNAPSHOT, s["g"], {"long_name": "active force g"}),
            "run": ("sample", s["run"], {"long_name": "independent run"}),
            "time": ("sample", s["time"], {"long_name": "simulation time"}),
            "largest_cluster_fraction": ("sample", s["largest_cluster_fraction"],
                                         {"long_name": "fraction of the particles in the largest cluster"}),
            "equilibration_time": ("check", s["equilibration_time"], {"long_name": "time along the equilibration"}),
            "equilibration_cluster_fraction": (("run", "check"), s["equilibration_cluster_fraction"],
                                               {"long_name": "largest-cluster fraction along the equilibration"}),
        },
        attrs=attrs,
    )
