"""Thin adapter: rule `simulate_transfer` -> activeflow.stages.simulate_transfer."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import simulate_transfer

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
simulation = dict(snakemake.params.simulation)
# the (N, phi) of the wildcards come inside `simulation`, so that they are params
n_particles, phi = simulation.pop("n_particles"), simulation.pop("phi")
logs.run_stage(
    simulate_transfer.run,
    parameters=dict(snakemake.params.parameters),
    simulation=simulation,
    seed=snakemake.params.seed,
    samples_path=snakemake.output[0],
    n_particles=n_particles,
    phi=phi,
)
