# Movies (config section `movies`): for every trap experiment, its stochastic trajectory with each
# swimmer coloured by the system EPR of the learned score (activeflow.stages.movie).


rule movie_trap:
    input:
        model="results/{experiment}/model.eqx",
        spec="results/{experiment}/model.json",
        trajectories="results/{experiment}/trajectories.nc",
        summary="results/{experiment}/epr_summary.csv",
        diagnostics="results/{experiment}/diagnostics.csv",
    output:
        movie=report(
            "results/movies/{experiment}-epr.mp4",
            caption="../report/movie_trap.rst",
            category="Movies",
            subcategory="{experiment}",
        ),
        poster="results/movies/{experiment}-epr.png",
    log:
        "logs/movies/{experiment}/movie_trap.log",
    benchmark:
        "logs/movies/{experiment}/movie_trap.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        model=model_config,
        fps=config.get("movies", {}).get("fps"),
        pixels=config.get("movies", {}).get("pixels"),
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/movie_trap.py"
