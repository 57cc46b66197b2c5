"""Thin adapter: rule `movie_mips` -> activeflow.stages.movie.run_mips."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, threads
from activeflow.stages import movie

logs.to_file(snakemake.log[0])
threads.limit(snakemake.threads)
logs.run_stage(
    movie.run_mips,
    model_path=snakemake.input.model,
    spec_path=snakemake.input.spec,
    samples_path=snakemake.input.samples,
    phases_path=snakemake.input.phases,
    movie_path=snakemake.output.movie,
    poster_path=snakemake.output.poster,
    system_name=snakemake.wildcards.system,
    expected=dict(snakemake.params.model),
    simulation=dict(snakemake.params.simulation),
    seed=snakemake.params.seed,
    n_frames=snakemake.params.frames,
    every=snakemake.params.every,
    fps=snakemake.params.fps,
    pixels=snakemake.params.pixels,
)
