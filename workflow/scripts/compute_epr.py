"""Thin adapter: rule `compute_epr` -> activeflow.stages.compute_epr."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import compute_epr

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    compute_epr.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    epr_path=snakemake.output.epr,
    summary_path=snakemake.output.summary,
    expected=dict(snakemake.params.model),
    training_path=snakemake.input.training,
)
