"""Thin adapter: rule `train_denoising` -> activeflow.denoising.run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import denoising, logs

logs.to_file(snakemake.log[0])
logs.run_stage(
    denoising.run,
    parameters=dict(snakemake.params.parameters),
    network=dict(snakemake.params.network),
    training=dict(snakemake.params.training),
    seed=snakemake.params.seed,
    samples_path=snakemake.input.samples,
    model_path=snakemake.output.model,
    spec_path=snakemake.output.spec,
    csv_path=snakemake.output.history,
    checkpoint_path=snakemake.params.checkpoint,
)
