"""Thin adapter: rule `lattice_fields` -> activeflow.stages.lattice_fields."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import lattice_fields

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    lattice_fields.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    fields_path=snakemake.output.fields,
    summary_path=snakemake.output.summary,
    expected=dict(snakemake.params.model),
    n_snapshots=snakemake.params.n_snapshots,
    sigma=snakemake.params.sigma,
    thresholds=dict(snakemake.params.thresholds),
)
