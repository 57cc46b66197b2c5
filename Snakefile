# activeflow: learned probability flows and entropy production rates of active matter.
# Run: snakemake --cores 8 --resources gpu=1 [--configfile config/quick.yaml]
# SLURM: snakemake --profile profiles/slurm (edit its partition and account names first).


import re
import sys

from snakemake.utils import min_version

min_version("9.0")
# This checkout's library; activeflow.config imports no JAX, so even `snakemake -n` stays fast.
sys.path.insert(0, f"{workflow.basedir}/src")

from activeflow.config import concrete_experiments, validate as validate_config
from activeflow.figures.table import FIGURES as FIGURE_LIST


configfile: "config/config.yaml"


# Schema and cross-key checks, all problems at once, before the DAG is built (src/activeflow/config.py).
validate_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


# `gpu` counts against --resources only for jobs run on this machine; jobs submitted to a cluster
# (SLURM) are not tallied, so a local `--resources gpu=1` never serialises them (README: "Why gpu is
# a local resource").
resource_scopes:
    gpu="local",


include: "workflow/rules/common.smk"


EXPERIMENTS = concrete_experiments(config)
MIPS = "mips" in config  # the MIPS chain runs when the config has a `mips` section


wildcard_constraints:
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),
    system=r"train|transfer/n[0-9]+-phi[0-9.e+-]+",
    n="[0-9]+",
    lattice_set=r"train|n[0-9]+",
    n_side="[0-9]+",
    phi="[0-9.e+-]+",


include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/diagnose.smk"
include: "workflow/rules/epr.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/accuracy.smk"
include: "workflow/rules/figures.smk"


if MIPS:

    include: "workflow/rules/mips.smk"


if "lattice" in config:

    include: "workflow/rules/lattice.smk"


if "movies" in config:

    include: "workflow/rules/movies.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
