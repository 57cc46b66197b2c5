"""Thin adapter: rule `simulate_lattice` -> activeflow.stages.simulate_lattice."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import simulate_lattice

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    simulate_lattice.run,
    parameters=dict(snakemake.params.parameters),
    simulation=dict(snakemake.params.simulation),
    seed=snakemake.params.seed,
    samples_path=snakemake.output[0],
    purpose=snakemake.params.purpose,
    n_side=snakemake.params.n_side,
)
