"""Thin adapter: rule `accuracy` -> activeflow.accuracy.run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import accuracy, logs

logs.to_file(snakemake.log[0])
logs.run_stage(
    accuracy.run,
    summary_paths=dict(zip(snakemake.params.experiments, snakemake.input)),
    meta=dict(snakemake.params.meta),
    thresholds=dict(snakemake.params.thresholds),
    out_path=snakemake.output[0],
)
