"""Thin adapter: rule `simulate` -> activeflow.stages.simulate."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import simulate

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    simulate.run,
    system_kind=snakemake.params.system,
    parameters=dict(snakemake.params.parameters),
    simulation=dict(snakemake.params.simulation),
    seed=snakemake.params.seed,
    experiment=snakemake.wildcards.experiment,
    samples_path=snakemake.output.samples,
    heldout_path=snakemake.output.heldout,
    trajectories_path=snakemake.output.trajectories,
)
