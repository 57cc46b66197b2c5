"""Bad configs: each is checked in-process by `activeflow.config.validate`, the function the Snakefile
calls, for a message naming the offending key and the allowed values; a few of them are fed to the real
`snakemake -n`, which must exit non-zero with that message before building the DAG."""

import copy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from activeflow import config as afconfig
from activeflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def merged(*names: str) -> dict:
    """config.yaml with presets merged on top, as Snakemake does with --configfile."""

    def merge(a: dict, b: dict) -> None:
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name in names:
        merge(cfg, yaml.safe_load((ROOT / "config" / name).read_text()))
    return cfg


BASE = merged("test.yaml")


def ring(c):
    return c["experiments"]["ring"]


def trap(c):
    return c["experiments"]["trap"]


def mips(c):
    return c["mips"]


def lattice(c):
    return c["lattice"]


# (id, edit of the test config, substrings the message must contain: the key and the allowed values)
CASES = [
    ("unknown-key", lambda c: ring(c)["training"].update(optimiser="adam"),
     ["experiments.ring.training.optimiser: unknown key", "did you mean 'optimizer'", "checkpoint_every, clip_norm"]),
    ("unknown-top-key", lambda c: c.update(sed=1), ["sed: unknown key", "experiments, figures, lattice, mips, movies, seed"]),
    ("enum-optimizer", lambda c: ring(c)["training"].update(optimizer="sgd"),
     ["experiments.ring.training.optimizer = 'sgd'", "allowed: 'adam', 'radam'"]),
    ("enum-system", lambda c: ring(c).update(system="rings"), ["experiments.ring.system = 'rings'", "allowed: 'ring'"]),
    ("enum-network", lambda c: ring(c)["network"].update(kind="cnn"), ["experiments.ring.network.kind = 'cnn'", "'mlp'"]),
    ("enum-format", lambda c: c["figures"].update(formats=["png", "jpg"]),
     ["figures.formats[1] = 'jpg'", "allowed: 'png', 'pdf', 'svg'"]),
    ("yaml-float-as-text", lambda c: ring(c)["training"].update(learning_rate="1e-3"),
     ["experiments.ring.training.learning_rate = '1e-3'", "write 1.0e-3", "type number"]),
    ("float-for-integer", lambda c: ring(c)["training"].update(steps=20.5),
     ["experiments.ring.training.steps = 20.5", "type integer"]),
    ("bool-for-integer", lambda c: ring(c)["simulation"].update(n_replicas=True),
     ["experiments.ring.simulation.n_replicas = True", "type integer"]),
    ("int-for-bool", lambda c: ring(c)["network"].update(periodic=1),
     ["experiments.ring.network.periodic = 1", "type boolean"]),
    ("eps-zero", lambda c: ring(c)["parameters"].update(eps=0.0),
     ["experiments.ring.parameters.eps = 0.0", "number > 0"]),
    ("ema-decay-one", lambda c: ring(c)["training"].update(ema_decay=1.0),
     ["experiments.ring.training.ema_decay = 1.0", "0 ≤ number < 1"]),
    ("too-few-replicas", lambda c: ring(c)["simulation"].update(n_replicas=1),
     ["experiments.ring.simulation.n_replicas = 1", "2 ≤ integer ≤ 100000000"]),
    ("dpi-range", lambda c: c["figures"].update(dpi=5000), ["figures.dpi = 5000", "30 ≤ integer ≤ 1200"]),
    ("negative-seed", lambda c: c.update(seed=-1), ["seed = -1", "integer ≥ 0"]),
    ("missing-key", lambda c: ring(c)["training"].pop("lambda_fpe"),
     ["experiments.ring.training.lambda_fpe: required key is missing", "lambda_sm, lambda_fpe"]),
    ("missing-seed", lambda c: c.pop("seed"), ["seed: required key is missing", "seed, experiments, figures"]),
    ("range-one-number", lambda c: ring(c)["map"].update(x_range=[-8.0]),
     ["experiments.ring.map.x_range = [-8.0]", "exactly 2 items"]),
    ("bad-experiment-name", lambda c: c["experiments"].update({"ring v2": copy.deepcopy(ring(c))}),
     ["experiments: name 'ring v2'", "letters, digits, _ and -"]),
    ("experiment-empty", lambda c: c["experiments"].update(ring=None),
     ["experiments.ring = None", "type object"]),
    # cross-key checks
    ("ring-experiment", lambda c: c["figures"].update(ring_experiment="rign"),
     ["figures.ring_experiment = 'rign'", "allowed: 'ring'"]),
    ("batch-exceeds-data", lambda c: ring(c)["training"].update(batch_size=2048),
     ["experiments.ring.training.batch_size = 2048", "allowed: 1 to 1024"]),
    ("map-leaves-ring", lambda c: ring(c)["map"].update(x_range=[-9.0, 8.0]),
     ["experiments.ring.map.x_range = [-9.0, 8.0]", "[-8.0, 8.0]"]),
    ("map-decreasing", lambda c: ring(c)["map"].update(g_range=[5.0, -5.0]),
     ["experiments.ring.map.g_range = [5.0, -5.0]", "low < high"]),
    ("warmup-not-below-steps", lambda c: ring(c)["training"].update(warmup_steps=20),
     ["experiments.ring.training.warmup_steps = 20", "allowed: 0 to 19"]),
    ("checkpoint-after-end", lambda c: ring(c)["training"].update(checkpoint_every=21),
     ["experiments.ring.training.checkpoint_every = 21", "allowed: 1 to 20"]),
    ("dt-too-stiff", lambda c: ring(c)["simulation"].update(dt=0.25, t_between=0.5, t_burn_in=2.0,
                                                           trajectories=dict(n=2, duration=5.0, t_record=0.25)),
     ["experiments.ring.simulation.dt = 0.25", "dt ≤ 0.1"]),
    ("t-between-off-grid", lambda c: ring(c)["simulation"].update(t_between=0.0015),
     ["experiments.ring.simulation.t_between = 0.0015", "multiple of dt, e.g. 0.002"]),
    ("trap-map-misses-cluster", lambda c: trap(c)["map"].update(x_range=[-2.0, 2.0]),
     ["experiments.trap.map.x_range = [-2.0, 2.0]", "does not contain the packed cluster", "low ≤ -3.16"]),
    ("trap-experiment", lambda c: c["figures"].update(trap_experiment="trapp"),
     ["figures.trap_experiment = 'trapp'", "allowed: 'trap'"]),
    ("trap-experiment-missing", lambda c: c["figures"].pop("trap_experiment"),
     ["figures.trap_experiment = None", "missing, but a trap experiment is configured", "allowed: 'trap'"]),
    ("transformer-key-on-mlp", lambda c: ring(c)["network"].update(embed_dim=8),
     ["experiments.ring.network.embed_dim: not allowed for this network kind"]),
    ("mlp-key-on-transformer", lambda c: trap(c)["network"].update(width=8),
     ["experiments.trap.network.width: not allowed for this network kind"]),
    ("embed-dim-splits-badly", lambda c: trap(c)["network"].update(embed_dim=6, n_heads=4),
     ["experiments.trap.network.embed_dim = 6", "an even multiple of n_heads"]),
    ("trap-in-3d", lambda c: trap(c)["parameters"].update(dim=3),
     ["experiments.trap.parameters.dim = 3", "allowed: 2"]),
    ("trap-snapshot-beyond-heldout", lambda c: trap(c)["map"].update(snapshot=16),
     ["experiments.trap.map.snapshot = 16", "beyond the held-out set", "0 to 15"]),
    ("t-record-after-end", lambda c: ring(c)["simulation"]["trajectories"].update(t_record=6.0),
     ["experiments.ring.simulation.trajectories.t_record = 6.0", "allowed: dt to 5.0"]),
    # MIPS (top-level section)
    ("mips-unknown-key", lambda c: mips(c)["training"].update(noise=0.1),
     ["mips.training.noise: unknown key", "sigma"]),
    ("mips-dt-stiff", lambda c: mips(c)["simulation"].update(dt=0.5),
     ["mips.simulation.dt = 0.5", "stiffest rate 6·mu·k", "dt ≤ 0.167"]),
    ("mips-box-too-small", lambda c: mips(c)["transfer"].update(phi=[0.5, 0.9], n_particles=[16, 64]),
     ["mips.transfer = 'N = 16, phi = 0.9'", "too small for the force cut-off"]),
    ("mips-figure-size-not-simulated", lambda c: mips(c)["figures"].update(arrows_n_particles=256),
     ["mips.figures.arrows_n_particles = 256", "not one of transfer.n_particles", "64, 128"]),
    ("mips-training-phi-not-transferred", lambda c: mips(c)["transfer"].update(phi=[0.3]),
     ["mips.transfer.phi = [0.3]", "lacks the training packing fraction 0.5"]),
    ("mips-too-many-neighbours", lambda c: mips(c)["network"].update(n_neighbours=64),
     ["mips.network.n_neighbours = 64", "1 to 63"]),
    ("mips-phi-above-close-packing", lambda c: mips(c)["parameters"].update(phi=0.95),
     ["mips.parameters.phi = 0.95", "0.9069"]),
    # numbers YAML can carry but no key accepts, refused before any check computes with them
    ("nan-learning-rate", lambda c: ring(c)["training"].update(learning_rate=float("nan")),
     ["experiments.ring.training.learning_rate = nan: not a finite number"]),
    ("inf-burn-in", lambda c: ring(c)["simulation"].update(t_burn_in=float("inf")),
     ["experiments.ring.simulation.t_burn_in = inf: not a finite number"]),
    ("nan-in-a-sweep", lambda c: c["experiments"]["linear"]["parameters"].update(v0=[0.0, float("nan")]),
     ["experiments.linear.parameters.v0[1] = nan: not a finite number"]),
    ("minus-inf-transfer-phi", lambda c: mips(c)["transfer"].update(phi=[0.3, float("-inf")]),
     ["mips.transfer.phi[1] = -inf: not a finite number"]),
    ("movie-of-an-unknown-mips-system", lambda c: c["movies"]["mips"].update(systems=["transfer/n99-phi0.5"]),
     ["movies.mips.systems[0] = 'transfer/n99-phi0.5'", "not a configured MIPS system", "train, transfer/n64-phi0.5"]),
    ("movie-frames-between-steps", lambda c: c["movies"]["mips"].update(every=0.25),
     ["movies.mips.every = 0.25", "not a whole number of steps of simulation.dt = 0.1"]),
    ("absurd-step-count", lambda c: ring(c)["training"].update(steps=10**12),
     ["experiments.ring.training.steps = 1000000000000", "allowed: 1 ≤ integer ≤ 100000000"]),
    ("absurd-burn-in", lambda c: ring(c)["simulation"].update(t_burn_in=1e12),
     ["experiments.ring.simulation.t_burn_in = 1000000000000.0", "steps of simulation.dt", "more than 1e+09"]),
    ("absurd-mips-equilibration", lambda c: mips(c)["simulation"].update(t_equilibrate=1e300),
     ["mips.simulation.t_equilibrate = 1e+300", "more than 1e+09"]),
    # the active solid: its own checks, and the local score's shared with MIPS
    ("lattice-dt-stiff", lambda c: lattice(c)["simulation"].update(dt=0.2),
     ["lattice.simulation.dt = 0.2", "stiffest rate 8·mu·k", "dt ≤ 0.125"]),
    ("lattice-side-too-small-for-the-neighbours", lambda c: lattice(c)["evaluation"].update(n_side=[3, 16]) or
     lattice(c)["network"].update(n_neighbours=9), ["lattice.network.n_neighbours = 9", "smallest system (N = 9)"]),
    ("lattice-imbalance-with-denoising", lambda c: lattice(c)["training"].update(objective="denoising"),
     ["lattice.network.inputs = 'force_imbalance'", "lattice.training.objective: score_matching"]),
    ("lattice-contact-terms", lambda c: lattice(c)["network"].update(inputs="force_imbalance_contacts"),
     ["lattice.network.inputs = 'force_imbalance_contacts'", "soft disks of mips", "force_imbalance"]),
    ("lattice-too-many-neighbours", lambda c: lattice(c)["network"].update(n_neighbours=64),
     ["lattice.network.n_neighbours = 64", "1 to 63"]),
    ("lattice-experiment-name", lambda c: c["experiments"].update(lattice=c["experiments"]["ring"]),
     ["experiments.lattice", "shares results/lattice/"]),
    # the linear-feature prior, the convergence table, the verdict
    ("prior-on-the-ring", lambda c: ring(c)["network"].update(
        boltzmann_shift=True, prior=dict(n_radial=2, r_min=1.0, r_max=2.0, forces=False, products=False)),
     ["experiments.ring.network.prior", "allowed: systems 'trap', 'linear'"]),
    ("prior-without-shift", lambda c: trap(c)["network"].update(
        boltzmann_shift=False, prior=dict(n_radial=2, r_min=1.0, r_max=2.0, forces=True, products=False)),
     ["experiments.trap.network.boltzmann_shift = False", "allowed: true"]),
    ("prior-range-decreasing", lambda c: trap(c)["network"].update(
        prior=dict(n_radial=2, r_min=2.0, r_max=1.0, forces=True, products=False)),
     ["experiments.trap.network.prior.r_max = 1.0", "not above prior.r_min = 2.0"]),
    ("prior-forces-without-disks", lambda c: c["experiments"]["linear"]["network"].update(
        boltzmann_shift=True, prior=dict(n_radial=0, r_min=1.0, r_max=2.0, forces=True, products=False)),
     ["experiments.linear.network.prior.forces = True", "needs soft disks"]),
    ("gated-without-prior", lambda c: trap(c).update(network=dict(kind="gated_features", width=8, depth=1,
                                                                 boltzmann_shift=True)),
     ["experiments.trap.network.prior: required key is missing"]),
    ("monitor-beyond-heldout", lambda c: trap(c)["training"].update(monitor_snapshots=17),
     ["experiments.trap.training.monitor_snapshots = 17", "allowed: 2 to 16"]),
    ("missing-invariant-tolerance", lambda c: c["accuracy"].pop("invariant_tolerance"),
     ["accuracy.invariant_tolerance: required key is missing"]),
]
# Fed to the real `snakemake -n` too: a schema problem, a cross-key problem, a MIPS problem.
THROUGH_SNAKEMAKE = ("enum-optimizer", "batch-exceeds-data", "mips-dt-stiff")


def dry_run(case_dir: Path, cfg: dict) -> subprocess.CompletedProcess:
    """`snakemake -n` of this checkout's Snakefile, with `cfg` as the whole config.yaml of a fresh
    working directory (a full file, so that keys can also be removed)."""
    (case_dir / "config").mkdir(parents=True)
    (case_dir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "1", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(case_dir)],
        cwd=case_dir, capture_output=True, text=True, timeout=300,
    )


def edited(name: str) -> dict:
    cfg = copy.deepcopy(BASE)
    next(edit for n, edit, _ in CASES if n == name)(cfg)
    return cfg


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The unedited config and the THROUGH_SNAKEMAKE cases, in parallel processes."""
    jobs = {"valid": BASE} | {name: edited(name) for name in THROUGH_SNAKEMAKE}
    dirs = {name: tmp_path_factory.mktemp(name) for name in jobs}
    with ThreadPoolExecutor(max_workers=3) as pool:
        procs = dict(zip(jobs, pool.map(lambda n: dry_run(dirs[n], jobs[n]), jobs)))
    return {name: (procs[name], dirs[name]) for name in jobs}


def test_there_are_enough_distinct_cases():
    assert len({name for name, _, _ in CASES}) == len(CASES) >= 20


@pytest.mark.workflow
def test_the_unedited_config_plans_jobs(dry_runs):
    proc, _ = dry_runs["valid"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_score" in proc.stdout


@pytest.mark.parametrize("name,expected", [(n, e) for n, _, e in CASES], ids=[n for n, _, _ in CASES])
def test_bad_config_is_refused_with_the_key_and_the_allowed_values(name, expected):
    with pytest.raises(ConfigError) as err:
        afconfig.validate(edited(name), SCHEMA)
    for text in expected:
        assert text in str(err.value), f"{text!r} not in:\n{err.value}"


@pytest.mark.workflow
@pytest.mark.parametrize("name", THROUGH_SNAKEMAKE)
def test_bad_config_is_refused_by_snakemake_before_the_dag(dry_runs, name):
    expected = next(e for n, _, e in CASES if n == name)
    proc, case_dir = dry_runs[name]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "invalid configuration" in out, out[-3000:]
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out[-3000:]}"
    assert "Building DAG" not in out  # refused before the DAG, so before any job
    assert not (case_dir / "results").exists()


def test_every_problem_is_reported_at_once():
    cfg = copy.deepcopy(BASE)
    ring(cfg)["training"].update(optimizer="sgd", steps=0)
    ring(cfg)["parameters"].pop("L")
    with pytest.raises(ConfigError) as err:
        afconfig.validate(cfg, SCHEMA)
    lines = [line for line in str(err.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 3, err.value
    assert "3 problems" in str(err.value)


def test_shipped_configs_are_valid():
    for presets in ((), ("quick.yaml",), ("test.yaml",)):
        afconfig.validate(merged(*presets), SCHEMA)


def test_a_new_system_can_register_its_checks(monkeypatch):
    monkeypatch.setattr(afconfig, "_EXPERIMENT_CHECKS", list(afconfig._EXPERIMENT_CHECKS))

    @afconfig.experiment_check("ring")
    def _no_v0(name, exp, cfg):
        if exp["parameters"]["v0"] > 0.2:
            yield afconfig.problem(f"experiments.{name}.parameters.v0", exp["parameters"]["v0"], "too fast", "≤ 0.2")

    with pytest.raises(ConfigError, match=r"experiments.ring.parameters.v0 = 0.25: too fast; allowed: ≤ 0.2"):
        afconfig.validate(copy.deepcopy(BASE), SCHEMA)


def test_a_check_that_cannot_compute_names_where_instead_of_a_traceback(monkeypatch):
    monkeypatch.setattr(afconfig, "_EXPERIMENT_CHECKS", list(afconfig._EXPERIMENT_CHECKS))

    @afconfig.experiment_check("ring")
    def _overflowing(name, exp, cfg):
        yield from ()
        raise OverflowError("cannot convert float infinity to integer")

    with pytest.raises(ConfigError, match=r"experiments.ring: values that overflowing cannot be checked with "
                                          r"\(OverflowError: cannot convert float infinity to integer\)"):
        afconfig.validate(copy.deepcopy(BASE), SCHEMA)


def test_a_v0_sweep_expands_into_one_experiment_per_value():
    cfg = copy.deepcopy(BASE)
    trap(cfg)["parameters"]["v0"] = [0.0, 0.5, 1.0]
    experiments = afconfig.concrete_experiments(cfg)
    names = [n for n, e in experiments.items() if e["group"] == "trap"]
    assert names == ["trap-v0_0", "trap-v0_0.5", "trap-v0_1"]
    assert [experiments[n]["parameters"]["v0"] for n in names] == [0.0, 0.5, 1.0]
    assert all(experiments[n]["parameters"]["n_particles"] == 8 for n in names)  # the rest is shared
