"""Thin adapter: rule `attention_rollout` -> activeflow.stages.attention_rollout."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import attention_rollout

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    attention_rollout.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    out_path=snakemake.output[0],
    snapshot=int(snakemake.params.snapshot),
    n_examples=int(snakemake.params.examples),
    expected=dict(snakemake.params.model),
)
