# Motility-induced phase separation (§7, App. F.4-F.10), config section `mips`: one training set, one
# network (s_g by denoising), transferred unchanged to every (N, phi) of mips.transfer.


rule simulate_mips:
    output:
        "results/mips/train/samples.nc",
    log:
        "logs/mips/simulate_mips.log",
    benchmark:
        "logs/mips/simulate_mips.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        parameters=mips_config("parameters"),
        simulation=mips_config("simulation"),
        seed=config["seed"],
    script:
        "../scripts/simulate_mips.py"


rule simulate_transfer:
    output:
        "results/mips/transfer/n{n}-phi{phi}/samples.nc",
    log:
        "logs/mips/transfer/n{n}-phi{phi}/simulate_transfer.log",
    benchmark:
        "logs/mips/transfer/n{n}-phi{phi}/simulate_transfer.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        parameters=mips_config("parameters"),
        simulation=transfer_simulation,
        seed=config["seed"],
    script:
        "../scripts/simulate_transfer.py"


rule train_denoising:
    input:
        samples="results/mips/train/samples.nc",
    output:
        model="results/mips/model.eqx",
        spec="results/mips/model.json",
        history="results/mips/training.csv",
    log:
        "logs/mips/train_denoising.log",
    benchmark:
        "logs/mips/train_denoising.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        parameters=mips_config("parameters"),
        network=mips_config("network"),
        training=mips_config("training"),
        force_tolerance=mips_config("simulation", "force_tolerance"),
        system="mips",
        seed=config["seed"],
        # deliberately not an output: Snakemake keeps it when it reruns the job
        checkpoint="results/mips/checkpoints/train_denoising.ckpt",
    script:
        "../scripts/train_denoising.py"


rule mips_fields:
    input:
        model="results/mips/model.eqx",
        spec="results/mips/model.json",
        samples="results/mips/{system}/samples.nc",
    output:
        fields="results/mips/{system}/fields.nc",
        summary="results/mips/{system}/epr_by_phase.csv",
        profile="results/mips/{system}/epr_by_local_phi.csv",
    log:
        "logs/mips/{system}/mips_fields.log",
    benchmark:
        "logs/mips/{system}/mips_fields.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["jax"]
    resources:
        gpu=1,
    params:
        model=mips_model_config(),
        n_snapshots=mips_evaluated_snapshots,
        thresholds=canonical(config["accuracy"]),
        force_tolerance=mips_config("simulation", "force_tolerance"),
    script:
        "../scripts/mips_fields.py"


rule mips_summary:
    input:
        mips_summaries(),
    output:
        report(
            "results/mips/epr_by_phase.csv",
            caption="../report/mips_epr_by_phase.rst",
            category="Tables",
            subcategory="MIPS",
        ),
    log:
        "logs/mips/mips_summary.log",
    benchmark:
        "logs/mips/mips_summary.benchmark.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: config["threads"]["cpu"]
    script:
        "../scripts/mips_summary.py"
