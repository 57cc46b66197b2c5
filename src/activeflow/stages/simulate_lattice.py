"""Stage `simulate_lattice`: snapshots of the active solid (`numerics.lattice_sampling`), for training
or, from other seeds, for evaluation at the training side n or another one (transfer)."""

import logging
from typing import Any

import jax

from activeflow import io
from activeflow.io.samples import lattice_samples_dataset
from activeflow.numerics.lattice_sampling import attributes, simulate_lattice
from activeflow.physics.lattice import make_lattice
from activeflow.seeding import derive_key

log = logging.getLogger(__name__)
PURPOSES = ("train", "evaluate")


def run(parameters: dict[str, Any], simulation: dict[str, Any], seed: int, samples_path: str,
        purpose: str = "train", n_side: int | None = None) -> None:
    """Training snapshots (`purpose` "train"), or held-out ones at side `n_side` ("evaluate"). Simulated in
    float64: at ε = 0 a particle held in force balance moves by |b_x|Δt per step, far below float32's
    resolution of a coordinate of order the box."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose={purpose!r}; allowed: {list(PURPOSES)}")
    system = make_lattice(parameters, n_side)
    label = f"lattice {system.n_side}x{system.n_side}" + (" (held out)" if purpose == "evaluate" else "")
    log.info("%s: box L = %g, %d runs to t = %g, then %d snapshots every %g", label, system.box,
             simulation["n_runs"], simulation["t_equilibrate"], simulation["n_snapshots"], simulation["t_between"])
    key = derive_key(seed, "lattice", "simulate", purpose, str(system.n_side))
    with jax.enable_x64(True):
        s = simulate_lattice(system, key, simulation, label)
    ds = lattice_samples_dataset(s, attributes(system, float(simulation["dt"])))
    info = dict(stage="simulate", experiment="lattice", seed=seed, system="lattice", parameters=parameters,
                simulation=simulation, purpose=purpose, n_side=system.n_side)
    io.write_netcdf(ds, samples_path, info)
    log.info("wrote %s (%d snapshots of N = %d)", samples_path, ds.sizes["sample"], system.n_particles)
