rule aggregate_map:
    input:
        unpack(map_inputs),
    output:
        "results/{experiment}/epr_map.nc",
    log:
        "logs/{experiment}/aggregate_map.log",
    benchmark:
        "logs/{experiment}/aggregate_map.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        kind=lambda wildcards: map_kind(wildcards),
        model=model_config,
        map=experiment_config("map"),
    script:
        "../scripts/aggregate_map.py"


rule attention_rollout:
    input:
        model="results/{experiment}/model.eqx",
        spec="results/{experiment}/model.json",
        samples="results/{experiment}/heldout.nc",
    output:
        "results/{experiment}/attention.nc",
    log:
        "logs/{experiment}/attention_rollout.log",
    benchmark:
        "logs/{experiment}/attention_rollout.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        model=model_config,
        snapshot=experiment_config("map", "snapshot"),
        examples=experiment_config("map", "attention_examples"),
    script:
        "../scripts/attention_rollout.py"
