"""Thin adapter: rules `figure_*` -> activeflow.stages.figure."""

import os
import sys

# A CPU rule: it must not initialise a GPU (JAX would take 75% of its memory from the JAX job beside it).
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import figure

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    figure.run,
    name=snakemake.params.name,
    inputs={k: v if isinstance(v, str) else list(v) for k, v in snakemake.input.items()},
    outputs=list(snakemake.output),
    options=dict(snakemake.params.options),
)
