rule accuracy:
    input:
        expand("results/{experiment}/epr_summary.csv", experiment=list(EXPERIMENTS)),
    output:
        report(
            "results/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
        ),
    log:
        "logs/accuracy.log",
    conda:
        "../../envs/activeflow.yaml"
    params:
        experiments=list(EXPERIMENTS),
        meta=canonical(
            {
                name: {"system": exp["system"], "v0": exp["parameters"]["v0"]}
                for name, exp in EXPERIMENTS.items()
            }
        ),
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/accuracy.py"


rule figure_accuracy:
    input:
        accuracy="results/accuracy.csv",
    output:
        report(
            figure_paths("accuracy-epr"),
            caption="../report/accuracy-epr.rst",
            category="Accuracy",
        ),
    log:
        "logs/figures/accuracy-epr.log",
    conda:
        "../../envs/activeflow.yaml"
    params:
        name="accuracy-epr",
        options=figure_options(),
    script:
        "../scripts/figure.py"
