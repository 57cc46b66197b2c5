rule compute_epr:
    input:
        model="results/{experiment}/model.eqx",
        spec="results/{experiment}/model.json",
        samples="results/{experiment}/heldout.nc",
        training="results/{experiment}/samples.nc",
    output:
        epr="results/{experiment}/epr.nc",
        summary=report(
            "results/{experiment}/epr_summary.csv",
            caption="../report/epr_summary.rst",
            category="Tables",
            subcategory="{experiment}",
        ),
    log:
        "logs/{experiment}/compute_epr.log",
    benchmark:
        "logs/{experiment}/compute_epr.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        model=model_config,
    script:
        "../scripts/compute_epr.py"
