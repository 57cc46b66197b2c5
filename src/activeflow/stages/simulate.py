"""Stage `simulate`: training samples, held-out samples (independent replicas) and trajectories."""

import logging
from typing import Any

from activeflow import io
from activeflow.io.samples import samples_dataset, trajectories_dataset
from activeflow.numerics.sampling import sample, trajectories
from activeflow.physics.systems import make_system
from activeflow.seeding import derive_key

log = logging.getLogger(__name__)


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
    io.write_netcdf(trajectories_dataset(t), trajectories_path, provenance | {"split": "trajectories"})
    log.info("wrote %s", trajectories_path)
