"""Config checks the Snakefile runs before the DAG is built: the JSON schema, reported as one line per
problem naming the key and the allowed values, then cross-key checks the schema cannot express.

Imports neither JAX nor Snakemake, so every `snakemake` call (even `-n`) stays fast. A new system adds
its cross-key checks with the `experiment_check` decorator:

    @experiment_check("trap")
    def _trap_map(name, exp, cfg):
        if ...:
            yield problem(f"experiments.{name}.map.x_range", value, "does not contain the trap", "...")
"""

import difflib
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from activeflow.errors import ConfigError

ExperimentCheck = Callable[[str, dict[str, Any], dict[str, Any]], Iterable[str]]
GlobalCheck = Callable[[dict[str, Any]], Iterable[str]]
_EXPERIMENT_CHECKS: list[tuple[frozenset[str] | None, ExperimentCheck]] = []
_GLOBAL_CHECKS: list[GlobalCheck] = []

# Euler–Maruyama multiplies a mode of relaxation rate λ by (1 − λΔt) per step: unstable for λΔt > 2,
# oscillating for λΔt > 1. Require a margin so the sampled law is not dominated by the integrator.
MAX_RATE_DT = 0.5


def concrete_experiments(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Experiments by the name used in paths. `parameters.v0` given as a list is a sweep: each value
    becomes its own experiment `{name}-v0_{v0}` (its own chain of jobs and its own seed stream);
    `group` keeps the name of the config entry it came from."""
    out = {}
    for name, exp in cfg["experiments"].items():
        v0 = exp["parameters"]["v0"]
        for value in v0 if isinstance(v0, list) else [v0]:
            concrete = f"{name}-v0_{value:g}" if isinstance(v0, list) else name
            out[concrete] = dict(exp, parameters=dict(exp["parameters"], v0=value), group=name)
    return out


def problem(key: str, value: Any, what: str, allowed: str) -> str:
    return f"{key} = {value!r}: {what}; allowed: {allowed}"


def validate(cfg: Any, schema_path: str | Path) -> None:
    """Raise one ConfigError listing every non-finite number and schema problem, or else every cross-key
    problem."""
    problems = nonfinite_problems(cfg)
    reported = tuple(p.split(" = ")[0] + " " for p in problems)  # their schema messages would repeat them
    problems += [p for p in schema_problems(cfg, load_schema(schema_path)) if not p.startswith(reported)]
    if not problems:
        problems = cross_key_problems(cfg)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"invalid configuration ({len(problems)} problem{'s' * (len(problems) > 1)}; keys are "
            f"explained in config/README.md):\n{lines}"
        )


def load_schema(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


# --- schema ---------------------------------------------------------------------------------------


def key_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(config)"


def _child(path: str, key: str) -> str:
    return key if path == "(config)" else f"{path}.{key}"


def _bounds(schema: dict[str, Any]) -> str:
    """'number > 0', '0 ≤ number < 1' from the schema's minimum/maximum keywords."""
    kind = schema.get("type", "number")
    lo = (f"{schema['minimum']} ≤ " if "minimum" in schema else "") or (
        f"{schema['exclusiveMinimum']} < " if "exclusiveMinimum" in schema else ""
    )
    hi = (f" ≤ {schema['maximum']}" if "maximum" in schema else "") or (
        f" < {schema['exclusiveMaximum']}" if "exclusiveMaximum" in schema else ""
    )
    if lo and not hi:  # read as a lower bound: 'integer ≥ 2'
        value, op = lo[:-3], lo[-2]
        return f"{kind} {'≥' if op == '≤' else '>'} {value}"
    return f"{lo}{kind}{hi}"


def _type_hint(instance: Any, expected: Any) -> str:
    """PyYAML reads 1e-3 (no decimal point) as text, a classic slip."""
    if isinstance(instance, str) and "number" in str(expected):
        try:
            float(instance)
        except ValueError:
            return ""
        mantissa, _, exponent = instance.lower().partition("e")
        fixed = f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else repr(float(instance))
        return f" (YAML reads {instance} as text: write {fixed})"
    return ""


def _describe(error: Any) -> list[str]:
    path = key_path(error.absolute_path)
    v, value, inst, schema = error.validator, error.validator_value, error.instance, error.schema
    if v == "additionalProperties" and value is False:
        allowed = ", ".join(sorted(schema.get("properties", {})))
        known = list(schema.get("properties", {}))
        out = []
        for k in sorted(set(inst) - set(known)):
            close = difflib.get_close_matches(str(k), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{_child(path, k)}: unknown key{hint}; allowed keys here: {allowed}")
        return out
    if v == "required":
        missing = [k for k in value if k not in inst]
        return [f"{_child(path, k)}: required key is missing; required here: {', '.join(value)}" for k in missing]
    if v == "enum":
        return [problem(path, inst, "not allowed", ", ".join(map(repr, value)))]
    if v == "type":
        return [problem(path, inst, f"wrong type{_type_hint(inst, value)}", f"a value of type {value}")]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [problem(path, inst, "out of range", _bounds(schema))]
    if v in ("minItems", "maxItems"):
        n_min, n_max = schema.get("minItems", 0), schema.get("maxItems")
        count = f"exactly {n_min}" if n_min == n_max else f"{n_min} to {n_max or 'any number of'}"
        return [problem(path, inst, f"has {len(inst)} items", f"a list of {count} items")]
    if v == "oneOf":
        return [problem(path, inst, "not allowed", schema.get("description", "see config/README.md"))]
    if v == "not" and isinstance(inst, dict):
        # `not: {required: [...]}` or `not: {anyOf: [{required: [...]}, ...]}`: keys of another kind
        keys = [k for alt in [value, *value.get("anyOf", [])] for k in alt.get("required", [])]
        owner = "network kind" if "kind" in inst else "system"
        return [f"{_child(path, k)}: not allowed for this {owner}; see config/README.md" for k in keys if k in inst]
    if v == "uniqueItems":
        return [problem(path, inst, "has repeated items", "each item at most once")]
    if v == "minProperties":
        return [problem(path, inst, "is empty", f"at least {value} entry")]
    if v == "pattern" and error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        return [f"{path}: name {inst!r} is not allowed; allowed: names matching {value} "
                "(letters, digits, _ and -, starting with a letter)"]
    if v == "pattern":
        return [problem(path, inst, "does not match", f"text matching {value}")]
    return [f"{path}: {error.message}"]


def nonfinite_problems(value: Any, path: tuple[Any, ...] = ()) -> list[str]:
    """Every NaN or infinity in the config (YAML's .nan, .inf, -.inf), which no key accepts: JSON Schema's
    bounds let some through (NaN compares false), and the cross-key checks would compute with them."""
    if isinstance(value, float) and not math.isfinite(value):
        return [problem(key_path(path), value, "not a finite number", "a finite number")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nonfinite_problems(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nonfinite_problems(v, (*path, i))]
    return []


def schema_problems(cfg: Any, schema: dict[str, Any]) -> list[str]:
    import jsonschema  # only needed here; the workflow extra installs it

    validator = jsonschema.Draft202012Validator(schema)
    problems: list[str] = []
    for error in sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path]):
        for line in _describe(error):
            if line not in problems:
                problems.append(line)
    return problems


# --- cross-key checks -----------------------------------------------------------------------------


def experiment_check(*systems: str) -> Callable[[ExperimentCheck], ExperimentCheck]:
    """Register fn(name, experiment, cfg) -> problems for experiments of `systems` (all if none)."""

    def register(fn: ExperimentCheck) -> ExperimentCheck:
        _EXPERIMENT_CHECKS.append((frozenset(systems) or None, fn))
        return fn

    return register


def global_check(fn: GlobalCheck) -> GlobalCheck:
    _GLOBAL_CHECKS.append(fn)
    return fn


def cross_key_problems(cfg: dict[str, Any]) -> list[str]:
    problems = [p for check in _GLOBAL_CHECKS for p in _guarded(check, "the config", cfg)]
    for name, exp in cfg["experiments"].items():
        for systems, check in _EXPERIMENT_CHECKS:
            if systems is None or exp["system"] in systems:
                problems.extend(_guarded(check, f"experiments.{name}", name, exp, cfg))
    return problems


def _guarded(check: Callable[..., Iterator[str]], where: str, *args: Any) -> list[str]:
    """A check's problems; values it cannot even compute with (an overflow, say) are a problem too, named
    by where they are, not a traceback."""
    try:
        return list(check(*args))
    except (ArithmeticError, ValueError, TypeError) as err:
        return [f"{where}: values that {check.__name__.strip('_').replace('_', ' ')} cannot be checked with "
                f"({type(err).__name__}: {err})"]


def _is_multiple(t: float, dt: float) -> bool:
    n = round(t / dt)
    return n >= 1 and math.isclose(n * dt, t, rel_tol=1e-6)


# More integration steps than any run of the paper needs by far (its longest is 2·10⁶): a typo, not a plan.
MAX_STEPS = 10**9


def _duration_problems(key: str, t: float, dt: float) -> Iterator[str]:
    """A duration must be a whole number of steps of dt, and not an absurd number of them."""
    if t / dt > MAX_STEPS:
        yield problem(key, t, f"{t / dt:.3g} steps of simulation.dt = {dt}, more than {MAX_STEPS:.0e}",
                      f"at most {MAX_STEPS * dt:g}")
    elif not _is_multiple(t, dt):
        yield problem(key, t, f"not a whole number of steps of simulation.dt = {dt}",
                      f"a positive multiple of dt, e.g. {max(round(t / dt), 1) * dt:g}")


def transfer_system(n: float, phi: float) -> str:
    """The {system} of results/mips/{system}/ for a transfer system of N particles at packing fraction phi."""
    return f"transfer/n{int(n)}-phi{float(phi):g}"


def mips_systems(cfg: dict[str, Any]) -> list[str]:
    """The MIPS training set and every transfer system of the config, as the {system} of results/mips/."""
    transfer = cfg["mips"]["transfer"]
    return ["train"] + [transfer_system(n, phi) for n in transfer["n_particles"] for phi in transfer["phi"]]


@global_check
def _movies(cfg: dict[str, Any]) -> Iterator[str]:
    """MIPS movies are of configured MIPS systems, and their frames a whole number of steps apart."""
    movie = cfg.get("movies", {}).get("mips")
    if movie is None:
        return
    if "mips" not in cfg:
        yield problem("movies.mips", "...", "needs the mips section", "remove movies.mips, or add mips")
        return
    known = mips_systems(cfg)
    for k, system in enumerate(movie["systems"]):
        if system not in known:
            yield problem(f"movies.mips.systems[{k}]", system, "not a configured MIPS system", ", ".join(known))
    yield from _duration_problems("movies.mips.every", movie["every"], cfg["mips"]["simulation"]["dt"])


@global_check
def _ring_figures(cfg: dict[str, Any]) -> Iterator[str]:
    ring = cfg["figures"]["ring_experiment"]
    experiments = concrete_experiments(cfg)
    if ring not in experiments or experiments[ring]["system"] != "ring":
        allowed = sorted(k for k, v in experiments.items() if v["system"] == "ring")
        yield problem("figures.ring_experiment", ring, "not an experiment of system 'ring'",
                      ", ".join(map(repr, allowed)) or "(no experiment of system 'ring' is configured)")


@global_check
def _trap_figures(cfg: dict[str, Any]) -> Iterator[str]:
    trap = cfg["figures"].get("trap_experiment")
    traps = sorted(n for n, e in cfg["experiments"].items() if e["system"] == "trap")
    if trap is None:
        if traps:
            yield problem("figures.trap_experiment", None, "missing, but a trap experiment is configured",
                          ", ".join(map(repr, traps)))
    elif trap not in traps:
        yield problem("figures.trap_experiment", trap, "not an experiment of system 'trap'",
                      ", ".join(map(repr, traps)) or "(no experiment of system 'trap' is configured)")


@experiment_check()
def _training(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    sim, train = exp["simulation"], exp["training"]
    key = f"experiments.{name}.training"
    n_train = sim["n_replicas"] * sim["n_snapshots"]
    if train["batch_size"] > n_train:
        yield problem(f"{key}.batch_size", train["batch_size"],
                      "larger than the training set (simulation.n_replicas x n_snapshots)", f"1 to {n_train}")
    steps = train["steps"]
    if train["warmup_steps"] >= steps:
        yield problem(f"{key}.warmup_steps", train["warmup_steps"], f"not below training.steps = {steps}",
                      f"0 to {steps - 1}")
    if train["checkpoint_every"] > steps:
        yield problem(f"{key}.checkpoint_every", train["checkpoint_every"],
                      f"larger than training.steps = {steps}, so no checkpoint would be written", f"1 to {steps}")
    n_held = sim["n_heldout_replicas"] * sim["n_snapshots"]
    if train["monitor_snapshots"] > n_held:
        yield problem(f"{key}.monitor_snapshots", train["monitor_snapshots"],
                      "more than the held-out snapshots (simulation.n_heldout_replicas x n_snapshots)", f"2 to {n_held}")


@experiment_check()
def _prior(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    net, key = exp["network"], f"experiments.{name}.network"
    prior = net.get("prior")
    if not prior:
        return
    if exp["system"] not in ("trap", "linear"):
        yield problem(f"{key}.prior", "...", "linear features are defined in open space", "systems 'trap', 'linear'")
    if not net["boltzmann_shift"]:
        yield problem(f"{key}.boltzmann_shift", False, "a prior is the known score the network corrects", "true")
    if not prior["r_min"] < prior["r_max"]:
        yield problem(f"{key}.prior.r_max", prior["r_max"], f"not above prior.r_min = {prior['r_min']}",
                      f"a distance above {prior['r_min']}")
    for flag in ("forces", "products"):
        if prior[flag] and exp["system"] != "trap":
            yield problem(f"{key}.prior.{flag}", True, "needs soft disks", "false (or system 'trap')")


@experiment_check()
def _time_grid(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    """Durations are taken in whole steps of dt; one that is not a multiple would be rounded and the
    recorded times would be wrong."""
    sim = exp["simulation"]
    dt, key = sim["dt"], f"experiments.{name}.simulation"
    tr = sim["trajectories"]
    durations = {"t_burn_in": sim["t_burn_in"], "trajectories.t_record": tr["t_record"]}
    if sim["n_snapshots"] > 1:
        durations["t_between"] = sim["t_between"]
    for sub, t in durations.items():
        if t == 0 and sub == "t_burn_in":
            continue
        yield from _duration_problems(f"{key}.{sub}", t, dt)
    if tr["t_record"] > tr["duration"]:
        yield problem(f"{key}.trajectories.t_record", tr["t_record"],
                      f"longer than trajectories.duration = {tr['duration']}", f"dt to {tr['duration']}")


@experiment_check()
def _map_ranges(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    for sub in ("x_range", "g_range", "y_range"):
        if sub in exp.get("map", {}):
            lo, hi = exp["map"][sub]
            if not lo < hi:
                yield problem(f"experiments.{name}.map.{sub}", [lo, hi], "not increasing", "[low, high] with low < high")


def _stiff_dt(name: str, dt: float, rate: float, formula: str) -> Iterator[str]:
    """dt against the system's stiffest relaxation rate (see MAX_RATE_DT)."""
    if rate * dt > MAX_RATE_DT:
        yield problem(f"experiments.{name}.simulation.dt", dt,
                      f"too large for the stiffest rate {formula} = {rate:g} (rate·dt = {rate * dt:.3g})",
                      f"dt ≤ {MAX_RATE_DT / rate:.3g} (rate·dt ≤ {MAX_RATE_DT})")


@experiment_check("ring")
def _ring(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    p, dt = exp["parameters"], exp["simulation"]["dt"]
    half = p["L"] / 2
    lo, hi = exp["map"]["x_range"]
    if lo < -half or hi > half:
        yield problem(f"experiments.{name}.map.x_range", [lo, hi], f"leaves the ring of length L = {p['L']}",
                      f"within [-L/2, L/2] = [{-half}, {half}]")
    # Stiffest relaxation rates: the displacement's repulsion 2μ|f'| ≤ 2μk, and γ for g.
    yield from _stiff_dt(name, dt, max(2 * p["mu"] * p["k"], p["gamma"]), "max(2·mu·k, gamma)")


@experiment_check("linear")
def _linear(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    p, dt = exp["parameters"], exp["simulation"]["dt"]
    # Stiffest rates: the trap with all springs, μ(A + kN), and γ for g.
    rate = max(p["mu"] * (p["trap"] + p["spring"] * p["n_particles"]), p["gamma"])
    yield from _stiff_dt(name, dt, rate, "max(mu·(trap + spring·N), gamma)")


@experiment_check("trap")
def _trap(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    p, sim, m = exp["parameters"], exp["simulation"], exp["map"]
    key = f"experiments.{name}"
    # Stiffest rates: the trap plus up to six touching neighbours, each of stiffness ≤ k; and γ.
    yield from _stiff_dt(name, sim["dt"], max(p["mu"] * (p["trap"] + 6 * p["k"]), p["gamma"]),
                         "max(mu·(trap + 6k), gamma)")
    # The cluster: N disks of radius a at packing ~0.8 fill a disk of radius a·sqrt(N/0.8), and the
    # active force spreads it further; the map must at least hold that disk around the trap centre.
    radius = p["a"] * math.sqrt(p["n_particles"] / 0.8)
    for sub in ("x_range", "y_range"):
        lo, hi = m[sub]
        if lo < hi and (lo > -radius or hi < radius):
            yield problem(f"{key}.map.{sub}", [lo, hi],
                          f"does not contain the packed cluster around the trap centre (radius ≈ a·sqrt(N/0.8) = {radius:.3g})",
                          f"[low, high] with low ≤ {-radius:.3g} and high ≥ {radius:.3g}")
    n_held = sim["n_heldout_replicas"] * sim["n_snapshots"]
    if m["snapshot"] >= n_held:
        yield problem(f"{key}.map.snapshot", m["snapshot"], "beyond the held-out set", f"0 to {n_held - 1}")
    if m["attention_examples"] > p["n_particles"]:
        yield problem(f"{key}.map.attention_examples", m["attention_examples"], "more than the particles",
                      f"1 to {p['n_particles']}")
    if exp["network"]["kind"] == "mlp":
        yield problem(f"{key}.network.kind", "mlp", "takes a fixed number of particles in a ring", "'transformer', "
                      "'gated_features'")


@experiment_check()
def _transformer(name: str, exp: dict[str, Any], cfg: dict[str, Any]) -> Iterator[str]:
    net = exp["network"]
    if net["kind"] == "transformer":
        d_e, h = net["embed_dim"], net["n_heads"]
        if d_e % 2 or d_e % h:
            yield problem(f"experiments.{name}.network.embed_dim", d_e,
                          f"must split into x and g halves and into n_heads = {h} heads",
                          f"an even multiple of n_heads, e.g. {2 * h * max(d_e // (2 * h), 1)}")
        if exp["system"] in ("ring",):
            yield problem(f"experiments.{name}.network.kind", "transformer",
                          "has no periodic embedding for the ring", "'mlp'")
    if net["kind"] == "gated_features" and exp["system"] != "trap":
        yield problem(f"experiments.{name}.network.kind", "gated_features", "needs soft disks", "'mlp', 'transformer'")


# --- MIPS (top-level `mips`, App. F.4-F.10) ---------------------------------------------------------


def mips_cutoff(p: dict[str, Any], tolerance: float) -> float:
    """Force cut-off of `forces.soft_disk_cutoff` from its tail k e^{−β(r−2a)}/β (no JAX here); within
    `tolerance`/k of the exact one (tests/test_mips.py)."""
    return 2 * p["a"] + max(math.log(p["k"] / (p["beta"] * tolerance)), 0.0) / p["beta"]


def mips_box(n_particles: int, phi: float, a: float) -> float:
    return math.sqrt(n_particles * math.pi * a**2 / phi)


@global_check
def _mips(cfg: dict[str, Any]) -> Iterator[str]:
    m = cfg.get("mips")
    if m is None:
        return
    p, sim, net, train, tr, fig = (m[k] for k in ("parameters", "simulation", "network", "training", "transfer",
                                                  "figures"))
    # Euler steps of the stiffest mode, six overlapping neighbours of stiffness ≤ k: oscillation-free
    # for rate·dt < 1 (the athermal dynamics has no noise for the stricter margin of MAX_RATE_DT to protect).
    yield from _athermal_steps("mips", cfg, 6 * p["mu"] * p["k"], "6·mu·k",
                               [("simulation.t_equilibrate", sim["t_equilibrate"]),
                                ("simulation.t_between", sim["t_between"]),
                                ("transfer.t_equilibrate", tr["t_equilibrate"])])
    cutoff = mips_cutoff(p, sim["force_tolerance"])
    systems = [("mips.parameters", p["n_particles"], p["phi"])] + [
        ("mips.transfer", n, phi) for n in tr["n_particles"] for phi in tr["phi"]]
    for key, n, phi in systems:
        box = mips_box(n, phi, p["a"])
        if cutoff + sim["skin"] > box / 2:
            yield problem(f"{key}", f"N = {n}, phi = {phi}",
                          f"box L = {box:.3g} too small for the force cut-off {cutoff:.3g} plus skin {sim['skin']:g}",
                          "more particles or a lower phi (L/2 above the cut-off plus skin)")
    yield from _local_score("mips", m, min([p["n_particles"], *tr["n_particles"]]), p["n_particles"])
    # The figures' systems must be simulated: Figs. 9, 10 at the training phi, Figs. 11, 19-21 per N.
    sizes = ", ".join(map(str, tr["n_particles"]))
    if p["phi"] not in tr["phi"]:
        yield problem("mips.transfer.phi", tr["phi"], f"lacks the training packing fraction {p['phi']} "
                      "(Figs. 9 and 10 are drawn at it)", f"a list containing {p['phi']}")
    for key, n in [("arrows_n_particles", fig["arrows_n_particles"])] + [
            (f"packing_fraction.{k}", v) for k, v in sorted(fig["packing_fraction"].items())]:
        if n not in tr["n_particles"]:
            yield problem(f"mips.figures.{key}", n, "not one of transfer.n_particles", sizes)
    held = min(m["evaluation"]["n_snapshots"], sim["n_runs"] * sim["n_snapshots"], tr["n_runs"] * tr["n_snapshots"])
    if fig["snapshot"] >= held:
        yield problem("mips.figures.snapshot", fig["snapshot"], "beyond the evaluated snapshots (evaluation."
                      "n_snapshots, and the runs x snapshots of the training set and of each transfer system)",
                      f"0 to {held - 1}")

def _athermal_steps(section: str, cfg: dict[str, Any], rate: float, rate_name: str,
                    durations: list[tuple[str, float]]) -> Iterator[str]:
    """A top-level section (mips, lattice) that owns results/{section}/: no experiment of that name, a time
    step the stiffest rate allows, and durations that are whole numbers of steps."""
    dt = cfg[section]["simulation"]["dt"]
    if section in cfg["experiments"]:
        yield problem(f"experiments.{section}", "...", f"shares results/{section}/ with the top-level {section} "
                      "section", "any other experiment name")
    if rate * dt > 1:
        yield problem(f"{section}.simulation.dt", dt, f"too large for the stiffest rate {rate_name} = {rate:g}",
                      f"dt ≤ {1 / rate:.3g}")
    for key, t in durations:
        yield from _duration_problems(f"{section}.{key}", t, dt)


def _local_score(section: str, m: dict[str, Any], smallest: int, n_train: int) -> Iterator[str]:
    """The network and training blocks of a section whose s_g is learned by the local transformer (mips,
    lattice): `smallest` is the fewest particles of any of its systems, `n_train` those of the training set."""
    p, net, train = m["parameters"], m["network"], m["training"]
    if net["n_neighbours"] > smallest - 1:
        yield problem(f"{section}.network.n_neighbours", net["n_neighbours"], f"more than N - 1 of the smallest "
                      f"system (N = {smallest})", f"1 to {smallest - 1}")
    if net["embed_dim"] % 2 or net["embed_dim"] % net["n_heads"]:
        yield problem(f"{section}.network.embed_dim", net["embed_dim"],
                      f"must split into x and g halves and into n_heads = {net['n_heads']} heads",
                      "an even multiple of n_heads")
    if train["batch_size"] > n_train:
        yield problem(f"{section}.training.batch_size", train["batch_size"], "more than the particles of a snapshot",
                      f"1 to {n_train}")
    inputs = net.get("inputs", "g")
    if inputs in ("force_imbalance", "force_imbalance_contacts"):
        if train.get("objective", "denoising") != "score_matching":
            yield problem(f"{section}.network.inputs", inputs, "needs the clean force: noise on x would "
                          "move it", f"{section}.training.objective: score_matching (or inputs: g)")
        if not net["boltzmann_shift"]:
            yield problem(f"{section}.network.inputs", inputs, "learns the correction to s_g = −g",
                          f"{section}.network.boltzmann_shift: true")
        if p["v0"] <= 0:
            yield problem(f"{section}.network.inputs", inputs, "the imbalance is g + mu F/v0",
                          f"{section}.parameters.v0 > 0")
    if inputs == "force_imbalance_contacts" and section != "mips":
        yield problem(f"{section}.network.inputs", inputs, "the contact terms need a pair force of the distance "
                      "(the soft disks of mips)", "force_imbalance")
    if train["warmup_steps"] >= train["steps"]:
        yield problem(f"{section}.training.warmup_steps", train["warmup_steps"],
                      f"not below training.steps = {train['steps']}", f"0 to {train['steps'] - 1}")
    if train["checkpoint_every"] > train["steps"]:
        yield problem(f"{section}.training.checkpoint_every", train["checkpoint_every"],
                      f"larger than training.steps = {train['steps']}, so no checkpoint would be written",
                      f"1 to {train['steps']}")


# --- the active solid (top-level `lattice`) ---------------------------------------------------------


@global_check
def _lattice(cfg: dict[str, Any]) -> Iterator[str]:
    m = cfg.get("lattice")
    if m is None:
        return
    p, sim, ev = m["parameters"], m["simulation"], m["evaluation"]
    # the stiffest mode relaxes at rate 8·mu·k: Euler oscillates beyond rate·dt = 1 (and its own law's
    # Ṡ_tot falls short of the truth by 2.5·dt·mu·k relative, docs/methods.md)
    yield from _athermal_steps("lattice", cfg, 8 * p["mu"] * p["k"], "8·mu·k",
                               [("simulation.t_equilibrate", sim["t_equilibrate"]),
                                ("simulation.t_between", sim["t_between"])])
    sides = [p["n_side"], *ev["n_side"]]
    yield from _local_score("lattice", m, min(sides) ** 2, p["n_side"] ** 2)
    if ev["n_snapshots"] > ev["n_runs"] * sim["n_snapshots"]:
        yield problem("lattice.evaluation.n_snapshots", ev["n_snapshots"], "more than the held-out runs x snapshots",
                      f"1 to {ev['n_runs'] * sim['n_snapshots']}")

