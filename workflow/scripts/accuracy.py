"""Thin adapter: rule `accuracy` -> activeflow.stages.accuracy."""

import os
import sys

# A CPU rule: it must not initialise a GPU (JAX would take 75% of its memory from the JAX job beside it).
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import accuracy

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    accuracy.run,
    summary_paths=dict(zip(snakemake.params.experiments, snakemake.input.summaries)),
    diagnostics_paths=dict(zip(snakemake.params.experiments, snakemake.input.diagnostics)),
    meta=dict(snakemake.params.meta),
    mips_paths=dict(zip(snakemake.params.mips_systems, snakemake.input.mips)),
    lattice_paths=dict(zip(snakemake.params.lattice_systems, snakemake.input.lattice)),
    thresholds=dict(snakemake.params.thresholds),
    out_path=snakemake.output[0],
)
