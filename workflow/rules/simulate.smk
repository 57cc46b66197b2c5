rule simulate:
    output:
        samples="results/{experiment}/samples.nc",
        heldout="results/{experiment}/heldout.nc",
        trajectories="results/{experiment}/trajectories.nc",
    log:
        "logs/{experiment}/simulate.log",
    benchmark:
        "logs/{experiment}/simulate.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        system=experiment_config("system"),
        parameters=experiment_config("parameters"),
        simulation=experiment_config("simulation"),
        seed=config["seed"],
    script:
        "../scripts/simulate.py"
