"""Thin adapter: rule `diagnose` -> activeflow.stages.diagnose."""

import os
import sys

# A CPU rule: it must not initialise a GPU (JAX would take 75% of its memory from the JAX job beside it).
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import diagnose

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    diagnose.run,
    epr_path=snakemake.input.epr,
    nc_path=snakemake.output.nc,
    csv_path=snakemake.output.csv,
    thresholds=dict(snakemake.params.thresholds),
)
