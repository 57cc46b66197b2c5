rule train_score:
    input:
        samples="results/{experiment}/samples.nc",
        heldout="results/{experiment}/heldout.nc",
    output:
        model="results/{experiment}/model.eqx",
        spec="results/{experiment}/model.json",
        history="results/{experiment}/training.csv",
        convergence="results/{experiment}/convergence.csv",
    log:
        "logs/{experiment}/train_score.log",
    benchmark:
        "logs/{experiment}/train_score.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        system=experiment_config("system"),
        parameters=experiment_config("parameters"),
        network=experiment_config("network"),
        training=experiment_config("training"),
        dt=experiment_config("simulation", "dt"),
        integrator=experiment_config("simulation", "integrator"),
        seed=config["seed"],
        checkpoint=checkpoint_path,
    script:
        "../scripts/train_score.py"
