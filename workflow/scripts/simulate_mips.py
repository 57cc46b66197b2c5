"""Thin adapter: rule `simulate_mips` -> activeflow.stages.simulate_mips."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import simulate_mips

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    simulate_mips.run,
    parameters=dict(snakemake.params.parameters),
    simulation=dict(snakemake.params.simulation),
    seed=snakemake.params.seed,
    samples_path=snakemake.output[0],
)
