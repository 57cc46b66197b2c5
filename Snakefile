# activeflow: learned probability flows and entropy production rates of active matter.
# Run: snakemake --cores 8 --resources gpu=1 [--configfile config/quick.yaml]
# SLURM: snakemake --profile profiles/slurm (edit its partition and account names first).


import re

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


# `gpu` counts against --resources only for jobs run on this machine; jobs submitted to a cluster
# (SLURM) are not tallied, so a local `--resources gpu=1` never serialises them (README: "Why gpu is a local resource").
resource_scopes:
    gpu="local",


include: "workflow/rules/common.smk"


check_config(config)
EXPERIMENTS = concrete_experiments(config)


wildcard_constraints:
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),


include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/diagnose.smk"
include: "workflow/rules/epr.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/accuracy.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
