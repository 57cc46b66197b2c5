# Helpers shared by the rules: config lookups, cross-key checks, targets.


def canonical(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their repr, so without this
    reordering keys in a YAML file would look like a parameter change and rerun jobs."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def experiment_config(key):
    """A params function returning one block of the experiment's config (so edits trigger reruns)."""

    def lookup(wildcards):
        return canonical(config["experiments"][wildcards.experiment][key])

    return lookup


def check_config(cfg):
    """Checks the schema cannot express; fail before the DAG is built, naming the key."""
    experiments = cfg["experiments"]
    ring = cfg["figures"]["ring_experiment"]
    if ring not in experiments or experiments[ring]["system"] != "ring":
        allowed = sorted(k for k, v in experiments.items() if v["system"] == "ring")
        raise ValueError(
            f"figures.ring_experiment={ring!r} is not an experiment of system 'ring'; allowed: {allowed}"
        )
    for name, exp in experiments.items():
        sim, train = exp["simulation"], exp["training"]
        n_train = sim["n_replicas"] * sim["n_snapshots"]
        if train["batch_size"] > n_train:
            raise ValueError(
                f"experiments.{name}.training.batch_size={train['batch_size']} exceeds the "
                f"{n_train} training samples (n_replicas x n_snapshots)"
            )
        for key in ("x_range", "g_range"):
            lo, hi = exp["map"][key]
            if not lo < hi:
                raise ValueError(
                    f"experiments.{name}.map.{key}={[lo, hi]} must be increasing"
                )
        if exp["system"] == "ring":
            half = exp["parameters"]["L"] / 2
            lo, hi = exp["map"]["x_range"]
            if lo < -half or hi > half:
                raise ValueError(
                    f"experiments.{name}.map.x_range={[lo, hi]} leaves the ring; allowed within [-L/2, L/2] = [{-half}, {half}]"
                )


def figure_paths(name):
    return expand(
        "results/figures/{name}.{ext}", name=name, ext=config["figures"]["formats"]
    )


FIGURES = [
    "fig02-ring-flow",
    "fig03-ring-system-epr",
    "fig12-force-smoothing",
    "fig13-ring-decomposition",
    "fig14-ring-pointwise",
    "fig15-ring-diagnostics",
]


def all_targets():
    per_experiment = expand(
        "results/{experiment}/{file}",
        experiment=list(config["experiments"]),
        file=["diagnostics.csv", "epr_summary.csv"],
    )
    return per_experiment + [p for name in FIGURES for p in figure_paths(name)]


def ring_file(name):
    return f"results/{config['figures']['ring_experiment']}/{name}"


def figure_options(name=None, **arguments):
    """Params of one figure: its dpi (figures.dpi_override[name], else figures.dpi) and arguments,
    so that a per-figure override reruns only that figure."""
    figures = config["figures"]
    dpi = figures.get("dpi_override", {}).get(name, figures["dpi"])
    return canonical({"dpi": dpi, "arguments": arguments})
