"""Thin adapter: rule `aggregate_map` -> activeflow.stages.aggregate_map."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import aggregate_map

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    aggregate_map.run,
    kind=snakemake.params.kind,
    map_path=snakemake.output[0],
    grid=dict(snakemake.params.map),
    epr_path=snakemake.input.get("epr"),
    model_path=snakemake.input.get("model"),
    spec_path=snakemake.input.get("spec"),
    samples_path=snakemake.input.get("samples"),
    expected=dict(snakemake.params.model),
)
