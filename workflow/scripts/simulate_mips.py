"""Thin adapter: rules `simulate_mips` and `simulate_transfer` -> activeflow.mips_dataset.run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, mips_dataset

logs.to_file(snakemake.log[0])
simulation = dict(snakemake.params.simulation)
# transfer: the (N, phi) of the wildcards come inside `simulation`, so that they are params
n_particles, phi = simulation.pop("n_particles", None), simulation.pop("phi", None)
logs.run_stage(
    mips_dataset.run,
    parameters=dict(snakemake.params.parameters),
    simulation=simulation,
    seed=snakemake.params.seed,
    samples_path=snakemake.output[0],
    n_particles=n_particles,
    phi=phi,
)
