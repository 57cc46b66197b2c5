"""Thin adapter: rule `aggregate_map` -> activeflow.maps.run (ring phase space) or maps.run_spatial (trap)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, maps

logs.to_file(snakemake.log[0])
grid = snakemake.params.map
if snakemake.params.kind == "spatial":
    logs.run_stage(
        maps.run_spatial,
        epr_path=snakemake.input.epr,
        map_path=snakemake.output[0],
        x_range=list(grid["x_range"]),
        y_range=list(grid["y_range"]),
        bins=list(grid["bins"]),
        min_count=int(grid["min_count"]),
    )
else:
    logs.run_stage(
        maps.run,
        model_path=snakemake.input.model,
        spec_path=snakemake.input.spec,
        samples_path=snakemake.input.samples,
        map_path=snakemake.output[0],
        x_range=list(grid["x_range"]),
        g_range=list(grid["g_range"]),
        bins=list(grid["bins"]),
        smoothing=float(grid["density_smoothing"]),
        expected=dict(snakemake.params.model),
    )
