rule diagnose:
    input:
        epr="results/{experiment}/epr.nc",
    output:
        nc="results/{experiment}/diagnostics.nc",
        csv=report(
            "results/{experiment}/diagnostics.csv",
            caption="../report/diagnostics.rst",
            category="Tables",
            subcategory="{experiment}",
        ),
    log:
        "logs/{experiment}/diagnose.log",
    benchmark:
        "logs/{experiment}/diagnose.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    threads: config["threads"]["cpu"]
    params:
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/diagnose.py"
