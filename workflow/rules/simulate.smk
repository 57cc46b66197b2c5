rule simulate:
    output:
        samples="results/{experiment}/samples.nc",
        heldout="results/{experiment}/heldout.nc",
        trajectories="results/{experiment}/trajectories.nc",
    params:
        system=experiment_config("system"),
        parameters=experiment_config("parameters"),
        simulation=experiment_config("simulation"),
        seed=config["seed"],
    log:
        "logs/{experiment}/simulate.log",
    benchmark:
        "benchmarks/{experiment}/simulate.tsv"
    conda:
        "../../envs/activeflow.yaml"
    script:
        "../scripts/simulate.py"
