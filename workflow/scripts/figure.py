"""Thin adapter: rules `figure_*` -> activeflow.figures.run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import figures, logs

logs.to_file(snakemake.log[0])
logs.run_stage(
    figures.run,
    name=snakemake.params.name,
    inputs={k: v if isinstance(v, str) else list(v) for k, v in snakemake.input.items()},
    outputs=list(snakemake.output),
    options=dict(snakemake.params.options),
)
