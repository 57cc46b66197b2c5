rule accuracy:
    input:
        summaries=expand(
            "results/{experiment}/epr_summary.csv", experiment=sorted(EXPERIMENTS)
        ),
        diagnostics=expand(
            "results/{experiment}/diagnostics.csv", experiment=sorted(EXPERIMENTS)
        ),
        mips=mips_summaries() if "mips" in config else [],
        lattice=lattice_summaries() if "lattice" in config else [],
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
    threads: config["threads"]["cpu"]
    params:
        experiments=sorted(EXPERIMENTS),  # sorted: reordering the config reruns nothing
        meta=canonical(
            {
                name: {"system": exp["system"], "v0": exp["parameters"]["v0"]}
                for name, exp in EXPERIMENTS.items()
            }
        ),
        mips_systems=[f"mips/{s}" for s in mips_systems()] if "mips" in config else [],
        lattice_systems=(
            [f"lattice/n{n}" for n in config["lattice"]["evaluation"]["n_side"]]
            if "lattice" in config
            else []
        ),
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/accuracy.py"
