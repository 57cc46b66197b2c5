"""Thin adapter: rule `mips_fields` -> activeflow.stages.mips_fields."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import mips_fields

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    mips_fields.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    fields_path=snakemake.output.fields,
    summary_path=snakemake.output.summary,
    profile_path=snakemake.output.profile,
    expected=dict(snakemake.params.model),
    n_snapshots=snakemake.params.n_snapshots,
    thresholds=dict(snakemake.params.thresholds),
    force_tolerance=snakemake.params.force_tolerance,
)
