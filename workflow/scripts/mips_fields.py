"""Thin adapter: rule `mips_fields` -> activeflow.mips_epr.run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, mips_epr

logs.to_file(snakemake.log[0])
logs.run_stage(
    mips_epr.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    fields_path=snakemake.output.fields,
    summary_path=snakemake.output.summary,
    profile_path=snakemake.output.profile,
    expected=dict(snakemake.params.model),
    n_snapshots=snakemake.params.n_snapshots,
)
