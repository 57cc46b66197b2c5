"""Thin adapter: rule `movie_ring` -> activeflow.stages.movie.run_ring."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import movie

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    movie.run_ring,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    map_path=snakemake.input.map,
    heldout_path=snakemake.input.heldout,
    summary_path=snakemake.input.summary,
    diagnostics_path=snakemake.input.diagnostics,
    movie_path=snakemake.output.movie,
    poster_path=snakemake.output.poster,
    expected=dict(snakemake.params.model),
    n_starts=snakemake.params.starts,
    n_frames=snakemake.params.frames,
    every=snakemake.params.every,
    fps=snakemake.params.fps,
    pixels=snakemake.params.pixels,
    thresholds=dict(snakemake.params.thresholds),
)
