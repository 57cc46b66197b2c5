# activeflow: learned probability flows and entropy production rates of active matter.
# Run: snakemake --cores 8 --resources gpu=1 [--configfile config/quick.yaml]


import re

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


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


rule all:
    default_target: True
    input:
        all_targets(),
