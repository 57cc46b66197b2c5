# The exactly solvable active solid, config section `lattice` (not in the paper): simulated with the
# integrator of every system, its s_g learned as MIPS's is, and every learned value set beside its closed
# form, at the training side n and after transfer to the other sides of lattice.evaluation.n_side.


rule simulate_lattice:
    output:
        "results/lattice/{lattice_set}/samples.nc",
    log:
        "logs/lattice/{lattice_set}/simulate_lattice.log",
    benchmark:
        "logs/lattice/{lattice_set}/simulate_lattice.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        parameters=lattice_config("parameters"),
        simulation=lattice_simulation,
        purpose=lattice_purpose,
        n_side=lattice_set_side,
        seed=config["seed"],
    script:
        "../scripts/simulate_lattice.py"


rule train_lattice:
    input:
        samples="results/lattice/train/samples.nc",
    output:
        model="results/lattice/model.eqx",
        spec="results/lattice/model.json",
        history="results/lattice/training.csv",
    log:
        "logs/lattice/train_lattice.log",
    benchmark:
        "logs/lattice/train_lattice.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        parameters=lattice_config("parameters"),
        network=lattice_config("network"),
        training=lattice_config("training"),
        force_tolerance=0.0,  # unused: the solid's bonds are fixed
        system="lattice",
        seed=config["seed"],
        # deliberately not an output: Snakemake keeps it when it reruns the job
        checkpoint="results/lattice/checkpoints/train_lattice.ckpt",
    script:
        "../scripts/train_denoising.py"


rule lattice_fields:
    input:
        model="results/lattice/model.eqx",
        spec="results/lattice/model.json",
        samples="results/lattice/n{n_side}/samples.nc",
    output:
        fields="results/lattice/n{n_side}/fields.nc",
        summary="results/lattice/n{n_side}/epr.csv",
    log:
        "logs/lattice/n{n_side}/lattice_fields.log",
    benchmark:
        "logs/lattice/n{n_side}/lattice_fields.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        model=lattice_model_config(),
        n_snapshots=lattice_config("evaluation", "n_snapshots"),
        sigma=lattice_config("training", "sigma"),
        thresholds=canonical(config["accuracy"]),
    script:
        "../scripts/lattice_fields.py"


rule lattice_summary:
    input:
        lattice_summaries(),
    output:
        report(
            "results/lattice/epr.csv",
            caption="../report/lattice_epr.rst",
            category="Tables",
            subcategory="Active solid",
        ),
    log:
        "logs/lattice/lattice_summary.log",
    benchmark:
        "logs/lattice/lattice_summary.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["cpu"]
    params:
        n_side=lattice_config("parameters", "n_side"),
    script:
        "../scripts/lattice_summary.py"
