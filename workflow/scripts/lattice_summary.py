"""Thin adapter: rule `lattice_summary` -> activeflow.stages.lattice_summary."""

import os
import sys

# A CPU rule: it must not initialise a GPU (JAX would take 75% of its memory from the JAX job beside it).
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import lattice_summary

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    lattice_summary.run,
    paths=list(snakemake.input),
    out_path=snakemake.output[0],
    n_side_trained=snakemake.params.n_side,
)
