# Helpers shared by the rules: config lookups, targets. Config checks and the expansion of v0 sweeps
# into experiments: src/activeflow/config.py.

from types import SimpleNamespace

import activeflow.config as afconfig


def canonical(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their repr, so without this
    reordering keys in a YAML file would look like a parameter change and rerun jobs."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def experiment_config(*keys):
    """A params function returning one (nested) entry of the experiment's config, e.g.
    experiment_config("simulation", "dt"), so that editing it reruns the job."""

    def lookup(wildcards):
        value = EXPERIMENTS[wildcards.experiment]
        for key in keys:
            value = value[key]
        return canonical(value)

    return lookup


def model_config(wildcards):
    """What the model must have been trained for: stages that load it refuse a model.json that differs."""
    exp = EXPERIMENTS[wildcards.experiment]
    return canonical({k: exp[k] for k in ("system", "parameters", "network")})


FIGURE_TABLE = {fig.name: fig for fig in FIGURE_LIST}


def checkpoint_path(wildcards):
    """Training checkpoint: deliberately not an output, so Snakemake keeps it when it reruns the job."""
    return f"results/{wildcards.experiment}/checkpoints/train_score.ckpt"


def figure_paths(name):
    return expand(
        "results/figures/{name}.{ext}", name=name, ext=config["figures"]["formats"]
    )


def trap_experiments():
    """The experiments of the config entry figures.trap_experiment (a v0 sweep), by increasing v0."""
    group = config["figures"].get("trap_experiment")
    names = [n for n, e in EXPERIMENTS.items() if e["group"] == group]
    return sorted(names, key=lambda n: EXPERIMENTS[n]["parameters"]["v0"])


def trap_files(name):
    return [f"results/{experiment}/{name}" for experiment in trap_experiments()]


def trap_figure_arguments():
    """v0 of each column, and the held-out snapshot drawn in the top rows (map.snapshot)."""
    names = trap_experiments()
    snapshot = EXPERIMENTS[names[0]]["map"]["snapshot"] if names else 0
    return {
        "v0": [EXPERIMENTS[n]["parameters"]["v0"] for n in names],
        "snapshot": snapshot,
    }


def map_kind(wildcards):
    """Phase-space grids for one-coordinate systems (ring); spatial maps of particles in the plane (trap)."""
    return (
        "spatial"
        if EXPERIMENTS[wildcards.experiment]["system"] == "trap"
        else "phase_space"
    )


def map_inputs(wildcards):
    exp = wildcards.experiment
    if map_kind(wildcards) == "spatial":
        return {"epr": f"results/{exp}/epr.nc"}
    return {
        "model": f"results/{exp}/model.eqx",
        "spec": f"results/{exp}/model.json",
        "samples": f"results/{exp}/samples.nc",
    }


# Every documented output of an experiment (docs/outputs.md), so that a deleted one is rebuilt by a plain
# rerun; the maps and attention come in through the figures that draw them.
EXPERIMENT_OUTPUTS = [
    "samples.nc",
    "heldout.nc",
    "trajectories.nc",
    "model.eqx",
    "model.json",
    "training.csv",
    "convergence.csv",
    "epr.nc",
    "epr_summary.csv",
    "diagnostics.nc",
    "diagnostics.csv",
]
MODEL_OUTPUTS = ["model.eqx", "model.json", "training.csv"]


def all_targets():
    per_experiment = expand(
        "results/{experiment}/{file}",
        experiment=list(EXPERIMENTS),
        file=EXPERIMENT_OUTPUTS,
    )
    figures = [p for fig in enabled_figures() for p in figure_paths(fig.name)]
    mips, lattice = [], []
    if "mips" in config:
        mips = [f"results/mips/{f}" for f in ["epr_by_phase.csv", *MODEL_OUTPUTS]] + [
            f"results/mips/{system}/{f}"
            for system in mips_systems()
            for f in ("samples.nc", "fields.nc", "epr_by_local_phi.csv")
        ]
    if "lattice" in config:
        sides = [f"n{n}" for n in config["lattice"]["evaluation"]["n_side"]]
        lattice = (
            [f"results/lattice/{f}" for f in ["epr.csv", *MODEL_OUTPUTS]]
            + [
                f"results/lattice/{s}/{f}"
                for s in ["train", *sides]
                for f in ("samples.nc",)
            ]
            + [f"results/lattice/{s}/fields.nc" for s in sides]
        )
    return (
        per_experiment
        + ["results/accuracy.csv"]
        + mips
        + lattice
        + figures
        + movie_paths()
    )


def movie_paths():
    """The movies of the config's `movies` section: one per trap experiment of the figures' sweep, one
    per MIPS system of movies.mips, and the ring's flow with movies.ring."""
    if "movies" not in config:
        return []
    trap = [
        f"results/movies/{e}-epr.{ext}"
        for e in trap_experiments()
        for ext in ("mp4", "png")
    ]
    mips = [
        f"results/movies/mips/{system}-epr.{ext}"
        for system in config["movies"].get("mips", {}).get("systems", [])
        for ext in ("mp4", "png")
    ]
    ring = [f"results/movies/ring-flow.{ext}" for ext in ("mp4", "png")]
    return trap + mips + (ring if "ring" in config["movies"] else [])


def section_config(*keys):
    """A params value: one (nested) entry of the config, canonical, so that editing it reruns the job."""
    value = config
    for key in keys:
        value = value[key]
    return canonical(value)


def movies_config(*keys):
    """A params value of the movies section (one nested entry), so that editing it redoes the movies."""
    return section_config("movies", *keys)


def ring_file(name):
    return f"results/{config['figures']['ring_experiment']}/{name}"


def ring_model_config():
    """model_config of the ring experiment the figures (and the ring movie) draw."""
    return model_config(
        SimpleNamespace(experiment=config["figures"]["ring_experiment"])
    )


def figure_options(name=None, **arguments):
    """Params of one figure: its dpi (figures.dpi_override[name], else figures.dpi), arguments and,
    for figures of learned scores, the thresholds of the trust verdict; a per-figure override reruns
    only that figure."""
    figures = config["figures"]
    dpi = figures.get("dpi_override", {}).get(name, figures["dpi"])
    options = {"dpi": dpi, "arguments": arguments}
    if name in FIGURE_TABLE and FIGURE_TABLE[name].trust:
        options["thresholds"] = config["accuracy"]
    return canonical(options)


# ---- figures: one rule per entry of activeflow.figures.table ------------------------------------------


def enabled_figures():
    """The figures this config draws: ring and accuracy always; the trap's when a trap experiment is
    configured (Fig. 7 when its network is a transformer); MIPS when the config has a `mips` section.
    """
    out = []
    for fig in FIGURE_TABLE.values():
        if fig.family == "trap":
            names = trap_experiments()
            if not names:
                continue
            if fig.name.startswith("fig07") and any(
                EXPERIMENTS[n]["network"]["kind"] != "transformer" for n in names
            ):
                continue
        if fig.family in ("mips", "lattice") and fig.family not in config:
            continue
        out.append(fig)
    return out


def figure_inputs(fig):
    """Named inputs of a figure rule: the drawing function's files and, for figures of learned
    scores, the tables their trust verdict is read from."""
    if fig.family == "ring":
        files = {arg: ring_file(f) for arg, f in fig.inputs}
        experiments = [config["figures"]["ring_experiment"]]
    elif fig.family == "trap":
        files = {arg: trap_files(f) for arg, f in fig.inputs}
        experiments = trap_experiments()
    elif fig.family == "lattice":
        tables = lattice_summaries()
        return {arg: tables for arg, _ in fig.inputs} | {"trust_phases": tables}
    elif fig.family == "mips":
        fields = mips_figure_inputs(fig.name)
        files = {"fields": fields}
        listed = fields if isinstance(fields, list) else [fields]
        return files | {
            "trust_phases": [f.replace("fields.nc", "epr_by_phase.csv") for f in listed]
        }
    else:
        return {arg: f"results/{f}" for arg, f in fig.inputs}
    if fig.trust:
        files["trust_summaries"] = [f"results/{e}/epr_summary.csv" for e in experiments]
        files["trust_diagnostics"] = [
            f"results/{e}/diagnostics.csv" for e in experiments
        ]
    return files


def figure_arguments(fig):
    if fig.name.startswith("fig12"):
        p = EXPERIMENTS[config["figures"]["ring_experiment"]]["parameters"]
        return {k: p[k] for k in ("a", "k", "beta")}
    if fig.family == "trap":
        return trap_figure_arguments()
    # the active solid's closed forms, at its parameters, beside its learned values
    if fig.family == "lattice":
        p = config["lattice"]["parameters"]
        return {k: p[k] for k in ("mu", "k", "v0", "gamma", "n_side")} | {
            "sigma": config["lattice"]["training"]["sigma"],
            "dt": config["lattice"]["simulation"]["dt"],
        }
    if fig.family == "mips":
        return mips_figure_arguments(fig.name)
    return {}


def figure_label(name):
    """Report label of a figure: whether its results are trusted (read when the report is made)."""

    def label(wildcards, input):
        from activeflow.stages.figure import (
            untrusted,
        )  # at report time only: it imports the plotting code

        files = {k: list(v) for k, v in input.items() if k.startswith("trust_")}
        reasons = (
            untrusted(files, dict(config["accuracy"]))
            if FIGURE_TABLE[name].trust
            else []
        )
        verdict = "not converged: " + "; ".join(reasons) if reasons else "trusted"
        return {"figure": name, "results": verdict}

    return label


# ---- MIPS (config section `mips`) -------------------------------------------------------------------


def mips_config(*keys):
    """A params value: one (nested) entry of the mips section, so that editing it reruns the job."""
    return section_config("mips", *keys)


def mips_model_config():
    """What the MIPS model must have been trained for (checked against its model.json)."""
    return canonical(
        {"system": "mips"} | {k: config["mips"][k] for k in ("parameters", "network")}
    )


def mips_systems():
    """The training set and every transfer system, as the {system} of results/mips/{system}/."""
    return afconfig.mips_systems(config)


def mips_summaries():
    return [f"results/mips/{s}/epr_by_phase.csv" for s in mips_systems()]


def transfer_simulation(wildcards):
    """The training set's simulation settings with the transfer's runs, equilibration and snapshots,
    and the (N, phi) of the wildcards."""
    transfer = config["mips"]["transfer"]
    return canonical(
        config["mips"]["simulation"]
        | {k: transfer[k] for k in ("n_runs", "t_equilibrate", "n_snapshots")}
        | {"n_particles": int(wildcards.n), "phi": float(wildcards.phi)}
    )


def mips_evaluated_snapshots(wildcards):
    """Fig. 8's training snapshots (evaluation.n_snapshots of them); every transfer snapshot."""
    return (
        config["mips"]["evaluation"]["n_snapshots"]
        if wildcards.system == "train"
        else None
    )


def transfer_fields(n, phis):
    """fields.nc of the transfer systems of N = n at each phi."""
    return [
        f"results/mips/{afconfig.transfer_system(n, phi)}/fields.nc" for phi in phis
    ]


def mips_figure_inputs(name):
    """The fields files of one MIPS figure, in the order of its columns."""
    m = config["mips"]
    phi0, sizes, phis = (
        m["parameters"]["phi"],
        sorted(m["transfer"]["n_particles"]),
        sorted(m["transfer"]["phi"]),
    )
    if name == "fig08-mips-epr":
        return "results/mips/train/fields.nc"
    if name == "fig09-mips-transfer-size":
        return [transfer_fields(n, [phi0])[0] for n in sizes]
    if name == "fig10-mips-flow-arrows":
        return transfer_fields(m["figures"]["arrows_n_particles"], [phi0])[0]
    return transfer_fields(m["figures"]["packing_fraction"][name[:5]], phis)


def mips_figure_arguments(name):
    m = config["mips"]
    arguments = {"snapshot": m["figures"]["snapshot"]}
    if name == "fig09-mips-transfer-size":
        arguments["n_particles"] = sorted(m["transfer"]["n_particles"])
    elif name not in ("fig08-mips-epr", "fig10-mips-flow-arrows"):
        arguments["phi"] = sorted(m["transfer"]["phi"])
        arguments["n_particles"] = m["figures"]["packing_fraction"][name[:5]]
    return arguments


# ---- the active solid (config section `lattice`) ----------------------------------------------------


def lattice_config(*keys):
    """A params value: one (nested) entry of the lattice section, so that editing it reruns the job."""
    return section_config("lattice", *keys)


def lattice_model_config():
    """What the solid's model must have been trained for (checked against its model.json)."""
    return canonical(
        {"system": "lattice"}
        | {k: config["lattice"][k] for k in ("parameters", "network")}
    )


def lattice_purpose(wildcards):
    """Training snapshots for `train`, held-out ones (other seeds) for each `n{n}`."""
    return "train" if wildcards.lattice_set == "train" else "evaluate"


def lattice_set_side(wildcards):
    """The side n of a samples set: the training side for `train`, else that of `n{n}`."""
    if wildcards.lattice_set == "train":
        return None
    return int(wildcards.lattice_set[1:])


def lattice_simulation(wildcards):
    """The simulation settings, with evaluation.n_runs runs for a held-out set."""
    simulation = config["lattice"]["simulation"]
    if wildcards.lattice_set != "train":
        simulation = simulation | {"n_runs": config["lattice"]["evaluation"]["n_runs"]}
    return canonical(simulation)


def lattice_summaries():
    return [
        f"results/lattice/n{n}/epr.csv"
        for n in config["lattice"]["evaluation"]["n_side"]
    ]
