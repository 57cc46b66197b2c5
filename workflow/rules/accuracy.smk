rule accuracy:
    input:
        expand("results/{experiment}/epr_summary.csv", experiment=sorted(EXPERIMENTS)),
    output:
        report(
            "results/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
            subcategory="All experiments",
        ),
    log:
        "logs/accuracy.log",
    benchmark:
        "logs/accuracy.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        experiments=sorted(EXPERIMENTS),  # sorted: reordering the config reruns nothing
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
            subcategory="Learned against exact and score-free EPR",
        ),
    log:
        "logs/figures/accuracy-epr.log",
    benchmark:
        "logs/figures/accuracy-epr.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="accuracy-epr",
        options=figure_options("accuracy-epr"),
    script:
        "../scripts/figure.py"
