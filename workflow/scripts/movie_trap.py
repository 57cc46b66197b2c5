"""Thin adapter: rule `movie_trap` -> activeflow.stages.movie."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import movie

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    movie.run,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    trajectories_path=snakemake.input.trajectories,
    summary_path=snakemake.input.summary,
    diagnostics_path=snakemake.input.diagnostics,
    movie_path=snakemake.output.movie,
    poster_path=snakemake.output.poster,
    experiment=snakemake.wildcards.experiment,
    expected=dict(snakemake.params.model),
    fps=snakemake.params.fps,
    pixels=snakemake.params.pixels,
    thresholds=dict(snakemake.params.thresholds),
)
