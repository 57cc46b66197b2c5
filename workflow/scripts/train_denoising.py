"""Thin adapter: rules `train_denoising` (MIPS) and `train_lattice` -> activeflow.stages.train_denoising."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import train_denoising

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    train_denoising.run,
    parameters=dict(snakemake.params.parameters),
    network=dict(snakemake.params.network),
    training=dict(snakemake.params.training),
    seed=snakemake.params.seed,
    samples_path=snakemake.input.samples,
    model_path=snakemake.output.model,
    spec_path=snakemake.output.spec,
    csv_path=snakemake.output.history,
    checkpoint_path=snakemake.params.checkpoint,
    force_tolerance=snakemake.params.force_tolerance,
    system=snakemake.params.system,
)
