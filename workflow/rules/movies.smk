# Movies (config section `movies`): for every trap experiment, its stochastic trajectory with each
# swimmer coloured by the system EPR of the learned score; for the MIPS systems of movies.mips, a
# trajectory simulated from their samples, coloured by both EPRs; for the ring (movies.ring), its
# probability flow from a few held-out states (activeflow.stages.movie).


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
        fps=movies_config("fps"),
        pixels=movies_config("pixels"),
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/movie_trap.py"


if "ring" in config["movies"]:

    rule movie_ring:
        input:
            model=ring_file("model.eqx"),
            spec=ring_file("model.json"),
            map=ring_file("epr_map.nc"),
            heldout=ring_file("heldout.nc"),
            summary=ring_file("epr_summary.csv"),
            diagnostics=ring_file("diagnostics.csv"),
        output:
            movie=report(
                "results/movies/ring-flow.mp4",
                caption="../report/movie_ring.rst",
                category="Movies",
                subcategory="Ring",
            ),
            poster="results/movies/ring-flow.png",
        log:
            "logs/movies/ring/movie_ring.log",
        benchmark:
            "logs/movies/ring/movie_ring.benchmark.tsv"
        conda:
            "../../envs/jax.yaml"
        threads: config["threads"]["jax"]
        resources:
            gpu=1,
        params:
            model=ring_model_config(),
            starts=movies_config("ring", "starts"),
            frames=movies_config("ring", "frames"),
            every=movies_config("ring", "every"),
            fps=movies_config("fps"),
            pixels=movies_config("pixels"),
            thresholds=canonical(config["accuracy"]),
        script:
            "../scripts/movie_ring.py"


if "mips" in config and "mips" in config["movies"]:

    rule movie_mips:
        input:
            model="results/mips/model.eqx",
            spec="results/mips/model.json",
            samples="results/mips/{system}/samples.nc",
            phases="results/mips/{system}/epr_by_phase.csv",
        output:
            movie=report(
                "results/movies/mips/{system}-epr.mp4",
                caption="../report/movie_mips.rst",
                category="Movies",
                subcategory="MIPS",
            ),
            poster="results/movies/mips/{system}-epr.png",
        log:
            "logs/movies/mips/{system}/movie_mips.log",
        benchmark:
            "logs/movies/mips/{system}/movie_mips.benchmark.tsv"
        conda:
            "../../envs/jax.yaml"
        threads: config["threads"]["jax"]
        resources:
            gpu=1,
        params:
            model=mips_model_config(),
            simulation=mips_config("simulation"),
            seed=config["seed"],
            frames=movies_config("mips", "frames"),
            every=movies_config("mips", "every"),
            fps=movies_config("fps"),
            pixels=movies_config("pixels"),
        script:
            "../scripts/movie_mips.py"
