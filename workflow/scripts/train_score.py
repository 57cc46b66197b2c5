"""Thin adapter: rule `train_score` -> activeflow.stages.train_score."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import train_score

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    train_score.run,
    system_kind=snakemake.params.system,
    parameters=dict(snakemake.params.parameters),
    network=dict(snakemake.params.network),
    training=dict(snakemake.params.training),
    dt=snakemake.params.dt,
    integrator=snakemake.params.integrator,
    seed=snakemake.params.seed,
    experiment=snakemake.wildcards.experiment,
    samples_path=snakemake.input.samples,
    model_path=snakemake.output.model,
    spec_path=snakemake.output.spec,
    csv_path=snakemake.output.history,
    checkpoint_path=snakemake.params.checkpoint,
    heldout_path=snakemake.input.heldout,
    convergence_path=snakemake.output.convergence,
)
