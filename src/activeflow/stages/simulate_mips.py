"""Stage `simulate_mips`: the MIPS training snapshots (`numerics.mips_sampling`)."""

import logging
from typing import Any

from activeflow import io
from activeflow.io.samples import mips_samples_dataset
from activeflow.numerics.mips_sampling import attributes, make_mips, simulate_runs
from activeflow.seeding import derive_key

log = logging.getLogger(__name__)


def run(parameters: dict[str, Any], simulation: dict[str, Any], seed: int, samples_path: str,
        n_particles: int | None = None, phi: float | None = None) -> None:
    """Stage `simulate_mips`: the training set (N and φ None), or another N or φ (`simulate_transfer`)."""
    system = make_mips(parameters, simulation, n_particles, phi)
    transfer = n_particles is not None or phi is not None
    label = f"N={system.n_particles} phi={system.phi:g}" + (" (transfer)" if transfer else "")
    purpose = f"transfer n{system.n_particles} phi{system.phi:g}" if transfer else "dataset"
    log.info("%s: box L = %.4g, force cut-off %.4g, %d runs to t = %g, then %d snapshots every %g",
             label, system.box, system.cutoff, simulation["n_runs"], simulation["t_equilibrate"],
             simulation["n_snapshots"], simulation["t_between"])
    runs = simulate_runs(system, derive_key(seed, "mips", "simulate", purpose), simulation, label)
    ds = mips_samples_dataset(runs, attributes(system) | {"cluster_contact": float(simulation["cluster_contact"])})
    info = dict(stage="simulate", experiment="mips", seed=seed, system="mips", parameters=parameters,
                simulation=simulation, n_particles=system.n_particles, phi=system.phi)
    io.write_netcdf(ds, samples_path, info)
    log.info("wrote %s (%d snapshots; largest cluster %.3f to %.3f of the particles)", samples_path,
             ds.sizes["sample"], float(ds.largest_cluster_fraction.min()), float(ds.largest_cluster_fraction.max()))
