# Helpers shared by the rules: config lookups, cross-key checks, targets.


def canonical(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their repr, so without this
    reordering keys in a YAML file would look like a parameter change and rerun jobs."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def concrete_experiments(cfg):
    """Experiments by the name used in paths. `parameters.v0` given as a list is a sweep: each value
    becomes its own experiment `{name}-v0_{v0}` (its own chain of jobs and its own seed stream).
    """
    out = {}
    for name, exp in cfg["experiments"].items():
        v0 = exp["parameters"]["v0"]
        for value in v0 if isinstance(v0, list) else [v0]:
            concrete = f"{name}-v0_{value:g}" if isinstance(v0, list) else name
            out[concrete] = dict(
                exp, parameters=dict(exp["parameters"], v0=value), group=name
            )
    return out


def experiment_config(*keys):
    """A params function returning one (nested) entry of the experiment's config, e.g.
    experiment_config("simulation", "dt"), so that editing it reruns the job."""

    def lookup(wildcards):
        value = EXPERIMENTS[wildcards.experiment]
        for key in keys:
            value = value[key]
        return canonical(value)

    return lookup


def check_config(cfg):
    """Checks the schema cannot express; fail before the DAG is built, naming the key."""
    experiments = concrete_experiments(cfg)
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
        if exp["system"] == "ring":
            for key in ("x_range", "g_range"):
                lo, hi = exp["map"][key]
                if not lo < hi:
                    raise ValueError(
                        f"experiments.{name}.map.{key}={[lo, hi]} must be increasing"
                    )
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
        experiment=list(EXPERIMENTS),
        file=["diagnostics.csv", "epr_summary.csv"],
    )
    figures = [p for name in FIGURES + ["accuracy-epr"] for p in figure_paths(name)]
    return per_experiment + ["results/accuracy.csv"] + figures


def ring_file(name):
    return f"results/{config['figures']['ring_experiment']}/{name}"


def figure_options(name=None, **arguments):
    """Params of one figure: its dpi (figures.dpi_override[name], else figures.dpi) and arguments,
    so that a per-figure override reruns only that figure."""
    figures = config["figures"]
    dpi = figures.get("dpi_override", {}).get(name, figures["dpi"])
    return canonical({"dpi": dpi, "arguments": arguments})
