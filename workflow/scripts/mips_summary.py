"""Thin adapter: rule `mips_summary` -> activeflow.mips_epr.combine_summaries."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's library, also in conda envs

from activeflow import logs, mips_epr

logs.to_file(snakemake.log[0])
logs.run_stage(mips_epr.combine_summaries, paths=list(snakemake.input), out_path=snakemake.output[0])
