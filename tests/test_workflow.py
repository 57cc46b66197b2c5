"""End to end: the real Snakemake workflow on config/test.yaml in a temporary copy of the repository."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import nbformat
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from nbclient import NotebookClient

from activeflow import io as afio
from activeflow.figures.table import FIGURES as FIGURE_TABLE
from activeflow.io import cf

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SNAKEFMT = str(Path(sys.executable).with_name("snakefmt"))
MIPS_JAX_RULES = {"simulate_mips", "simulate_transfer", "train_denoising", "mips_fields"}
LATTICE_JAX_RULES = {"simulate_lattice", "train_lattice", "lattice_fields"}
JAX_RULES = ({"simulate", "train_score", "compute_epr", "aggregate_map", "attention_rollout", "movie_trap",
              "movie_mips", "movie_ring"} | MIPS_JAX_RULES | LATTICE_JAX_RULES)  # gpu=1

EXPECTED_VARIABLES = {
    "samples.nc": {"x", "g", "replica", "time"},
    "heldout.nc": {"x", "g", "replica", "time"},
    "trajectories.nc": {"x", "g"},
    "epr.nc": {"x", "g", "v_x", "v_g", "div_x_v_x", "div_g_v_g", "div_v", "epr_x", "epr_g", "epr_total", "score_free",
               "v_x_sq", "v_g_sq", "div_s_x", "div_s_g", "replica"},
    "diagnostics.nc": {"fpe_residual", "div_v", "v_dot_s", "sm_identity_x", "sm_identity_g"},
    "epr_map.nc": {"density", "counts", "v_x", "v_g", "epr_total", "div_v", "current_norm", "current_x", "current_g"},
}
TRAP_VARIABLES = {
    "epr_map.nc": {"counts", "v_x_sq", "v_g_sq", "epr_total", "div_x_v_x", "div_g_v_g", "div_v", "x_bounds", "y_bounds"},
    "attention.nc": {"x", "g", "rollout", "layer_attention", "example"},
}
FIGURES = [fig.name for fig in FIGURE_TABLE]  # config/test.yaml draws every figure of the table
MIPS_FIGURES = [fig.name for fig in FIGURE_TABLE if fig.family == "mips"]
# the mips section of config/test.yaml: training set and transfer systems, as in results/mips/{system}/
MIPS_SIZES = {f"transfer/n{n}-phi0.5": (n, 0.5) for n in (64, 128)} | {"train": (64, 0.5)}
MIPS_TRANSFER = [system for system in MIPS_SIZES if system != "train"]
MIPS_SYSTEMS = ["train", *MIPS_TRANSFER]
LINEAR = ["linear-v0_1"]  # the v0 sweep of config/test.yaml (one value; tests/test_config.py expands longer ones)
TRAP = ["trap-v0_0.5"]  # the trap sweep of config/test.yaml
EXPERIMENTS = ["ring", *LINEAR, *TRAP]
FIGURE_RULES = {fig.name: fig.rule for fig in FIGURE_TABLE}
ALL_RULES = JAX_RULES | set(FIGURE_RULES.values()) | {"accuracy", "diagnose", "mips_summary", "lattice_summary"}
MIPS_RULES = MIPS_JAX_RULES | {"mips_summary", "movie_mips"} | {FIGURE_RULES[name] for name in MIPS_FIGURES}
LATTICE_RULES = LATTICE_JAX_RULES | {"lattice_summary"} | {FIGURE_RULES[f.name] for f in FIGURE_TABLE
                                                           if f.family == "lattice"}
LATTICE_SIDES = (16,)  # lattice.evaluation.n_side of config/test.yaml (trained on 8 x 8: a transfer)


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "envs", "profiles", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def clone_run(run: Path, dest: Path) -> Path:
    """A copy of a finished run (results, logs, .snakemake metadata, mtimes kept) to edit freely."""
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return dest


def run_snakemake(workdir: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=600, **kwargs)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The workstation command line on the CI preset."""
    return run_snakemake(
        workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml", *args, check=check
    )


def planned_jobs(output: str) -> list[dict]:
    """The jobs a `snakemake -n` plans, from its job blocks: rule, wildcards and resources of each."""
    jobs = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", output, re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", m.group(2), re.M))
        resources = dict(kv.split("=", 1) for kv in fields.get("resources", "").split(", ") if "=" in kv)
        jobs.append(dict(rule=m.group(1), wildcards=fields.get("wildcards", ""), resources=resources,
                         threads=int(fields.get("threads", 1))))
    return jobs


def plan(workdir: Path, *args: str) -> Counter:
    """Planned jobs as a multiset of "rule" or "rule[wildcards]"."""
    proc = snakemake(workdir, "-n", *args)
    return Counter(j["rule"] + (f"[{j['wildcards']}]" if j["wildcards"] else "") for j in planned_jobs(proc.stdout))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One tiny run of the whole workflow, shared by the tests below; they only read it (or clone it)."""
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(work)
    return work


RING_DOWNSTREAM_OF_TRAINING = Counter(
    ["train_score[experiment=ring]", "diagnose[experiment=ring]", "compute_epr[experiment=ring]",
     "aggregate_map[experiment=ring]", "figure_fig02", "figure_fig03", "figure_fig13", "figure_fig14",
     "figure_fig15", "accuracy", "figure_accuracy", "movie_ring", "all"]
)


@pytest.mark.workflow
def test_every_output_exists_and_opens(finished_run):
    results = finished_run / "results" / "ring"
    for name, variables in EXPECTED_VARIABLES.items():
        with xr.open_dataset(results / name) as ds:
            assert variables <= set(ds.variables), (name, variables - set(ds.variables))
            assert "provenance" in ds.attrs and "package_versions" in ds.attrs
    with xr.open_dataset(results / "epr.nc") as ds:
        assert ds.v_x.dims == ("sample", "particle", "dim")
        assert ds.sizes["sample"] == 256 * 2  # held-out replicas x snapshots of config/test.yaml
    history = pd.read_csv(results / "training.csv")
    assert list(history.columns[:4]) == ["step", "loss", "score_matching", "fpe_residual"]
    assert history.step.iloc[-1] == 20
    table = pd.read_csv(results / "diagnostics.csv")
    assert set(table.invariant) == set(EXPECTED_VARIABLES["diagnostics.nc"])
    summary = pd.read_csv(results / "epr_summary.csv").set_index(["quantity", "estimator"])
    assert summary.loc[("S_tot", "learned"), "mean"] > 0 and summary.loc[("S_tot", "learned"), "stderr"] > 0
    assert summary.loc[("S_tot", "score_free"), "stderr"] > 0
    spec = json.loads((results / "model.json").read_text())
    assert spec["system"] == "ring" and spec["hyperparameters"]["width"] == 16
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (finished_run / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
        pdf = (finished_run / "results" / "figures" / f"{name}.pdf").read_bytes()
        assert b"/FontFile2" in pdf and b"/Type3" not in pdf, name  # TrueType embedded (pdf.fonttype 42)
    accuracy = pd.read_csv(finished_run / "results" / "accuracy.csv")
    assert set(accuracy.experiment) == {"ring", *LINEAR, *TRAP, *(f"mips/{m}" for m in MIPS_SYSTEMS),
                                        *(f"lattice/n{n}" for n in LATTICE_SIDES)}
    lattice_rows = accuracy[accuracy.system == "lattice"]
    assert (lattice_rows.truth == "exact").all() and np.allclose(lattice_rows.exact, 8.0)
    assert (accuracy[accuracy.experiment.isin(TRAP)].truth == "score_free").all()
    mips_rows = accuracy[accuracy.system == "mips"]
    assert (mips_rows.quantity == "S_tot").all() and (mips_rows.truth == "score_free").all()
    assert (mips_rows.reference > 0).all() and mips_rows.trusted.notna().all()
    lin = accuracy[accuracy.experiment == "linear-v0_1"].set_index("quantity")
    assert set(lin.index) == {"S_tot", "S_tot_x", "S_tot_g", "E_div_v", "E_div_x_v_x", "E_div_g_v_g"}
    assert (lin.truth == "exact").all() and lin.loc["S_tot", "exact"] > 0
    assert accuracy.set_index("experiment").loc["ring", "truth"] == "score_free"
    for name in LINEAR:
        with xr.open_dataset(finished_run / "results" / name / "epr.nc") as ds:
            assert ds.sizes["particle"] == 2 and ds.sizes["dim"] == 2
    for rule in ("simulate", "train_score", "diagnose", "compute_epr", "aggregate_map"):
        assert (finished_run / "logs" / "ring" / f"{rule}.log").stat().st_size > 0
    assert "steps/s" in (finished_run / "logs" / "ring" / "train_score.log").read_text()


@pytest.mark.workflow
def test_every_netcdf_is_cf_and_compressed(finished_run):
    """Every NetCDF file the run wrote: the CF-1.11 check of `io.cf`, a units string on every variable
    that is not a flag or a bounds, and zlib compression of every numeric variable."""
    paths = sorted((finished_run / "results").rglob("*.nc"))
    assert len(paths) >= 27, len(paths)
    for path in paths:
        with xr.open_dataset(path) as ds:
            assert cf.problems(ds) == [], path
            assert ds.attrs["Conventions"] == "CF-1.11" and afio.stage_info(ds), path
        with netCDF4.Dataset(path) as nc:
            plain = [name for name, var in nc.variables.items()
                     if var.dtype != str and not var.filters()["zlib"]]
            assert not plain, (path, plain)


@pytest.mark.workflow
def test_trap_outputs_per_v0(finished_run):
    for exp in TRAP:
        results = finished_run / "results" / exp
        for name, variables in TRAP_VARIABLES.items():
            with xr.open_dataset(results / name) as ds:
                assert variables <= set(ds.variables), (exp, name, variables - set(ds.variables))
        with xr.open_dataset(results / "epr_map.nc") as m, xr.open_dataset(results / "epr.nc") as e:
            assert m.v_g_sq.dims == ("y", "x") and m.sizes == {"y": 16, "x": 16, "nv": 2}
            assert m.x_bounds.values[0, 0] == -6.0 and m.y_bounds.values[-1, 1] == 6.0
            seen = m.counts.values >= 1
            assert np.isnan(m.v_g_sq.values[~seen]).all() and np.isfinite(m.v_g_sq.values[seen]).all()
            assert m.counts.values.sum() + m.attrs["n_outside"] == e.sizes["sample"] * e.sizes["particle"]
            assert e.sizes["particle"] == 8
        with xr.open_dataset(results / "samples.nc") as ds:
            assert "burn_in_x_sq" in ds and "burn_in_drift_z_x_sq" in ds.attrs
        spec = json.loads((results / "model.json").read_text())
        assert spec["network"]["kind"] == "transformer" and spec["hyperparameters"]["zero_output"]
    assert "stationarity:" in (finished_run / "logs" / TRAP[0] / "simulate.log").read_text()


@pytest.mark.workflow
def test_trap_movies_decode_and_carry_the_verdict(finished_run):
    """One movie per v0 of the trap's sweep (config `movies`): H.264 at the configured rate, one frame per
    recorded time of the trajectory, and the red mark of results that are not trusted on every frame."""
    import imageio.v2 as imageio

    from activeflow.figures import movies

    accuracy = pd.read_csv(finished_run / "results" / "accuracy.csv")
    for exp in TRAP:
        path = finished_run / "results" / "movies" / f"{exp}-epr.mp4"
        with xr.open_dataset(finished_run / "results" / exp / "trajectories.nc") as t:
            n_frames = t.sizes["time"]
        got = movies.info(path)
        assert got["codec"] == "h264" and got["fps"] == 5 and got["frames"] == n_frames and got["size"][1] == 256
        poster = imageio.imread(finished_run / "results" / "movies" / f"{exp}-epr.png")
        first = movies.read_frame(path, 0)
        assert poster.shape == first.shape
        trusted = bool(accuracy[(accuracy.experiment == exp) & (accuracy.quantity == "S_tot")].trusted.iloc[0])
        top = poster[:20].reshape(-1, 3).astype(int)
        red = np.any((abs(top[:, 0] - 0xC0) < 20) & (abs(top[:, 1] - 0x39) < 20) & (abs(top[:, 2] - 0x2B) < 20))
        assert red == (not trusted), exp
    # MIPS (movies.mips of config/test.yaml: 3 frames of the training system): two panels side by side
    got = movies.info(finished_run / "results" / "movies" / "mips" / "train-epr.mp4")
    assert got["frames"] == 3 and got["size"][1] == 256 and got["size"][0] > 2 * 256
    assert (finished_run / "results" / "movies" / "mips" / "train-epr.png").stat().st_size > 1000
    # the ring's flow (movies.ring of config/test.yaml: 3 frames)
    got = movies.info(finished_run / "results" / "movies" / "ring-flow.mp4")
    assert got["frames"] == 3 and got["size"][1] == 256


@pytest.mark.workflow
def test_mips_outputs(finished_run):
    """The training set, the one model, and the fields of every system with the model applied unchanged."""
    mips = finished_run / "results" / "mips"
    with xr.open_dataset(mips / "train" / "samples.nc") as ds:
        assert ds.x.shape == (2 * 2, 64, 2)  # runs x snapshots, N of config/test.yaml
        assert ds.equilibration_cluster_fraction.dims == ("run", "check") and ds.attrs["n_particles"] == 64
        assert np.all(np.abs(ds.x.values) <= ds.attrs["box"] / 2)
    spec = json.loads((mips / "model.json").read_text())
    assert spec["system"] == "mips" and spec["hyperparameters"]["n_neighbours"] == 4
    assert pd.read_csv(mips / "training.csv").step.iloc[-1] == 10
    for system in MIPS_SYSTEMS:
        with xr.open_dataset(mips / system / "fields.nc") as f, xr.open_dataset(mips / system / "samples.nc") as s:
            n, phi = MIPS_SIZES[system]
            assert (f.attrs["n_particles"], f.attrs["phi"]) == (n, phi) == (s.attrs["n_particles"], s.attrs["phi"])
            assert f.sizes["sample"] == (2 if system == "train" else 1) and f.sizes["particle"] == n
            np.testing.assert_allclose(f.v_g, -f.attrs["gamma"] * (f.g + f.s_g), rtol=1e-5, atol=1e-12)
            np.testing.assert_allclose(f.v_g_sq, (f.v_g**2).sum("dim"), rtol=1e-5)
            assert np.isfinite(f.div_g_v_g).all() and set(np.unique(f.phase)) <= {0, 1, 2}
            # the score-free truth per particle is finite, and its mean is positive
            assert np.isfinite(f.mu_laplacian_phi).all() and float(f.mu_laplacian_phi.mean()) > 0
            profile = pd.read_csv(mips / system / "epr_by_local_phi.csv")
            assert profile["count"].sum() == f.sizes["sample"] * n and np.isclose(profile.fraction.sum(), 1.0)
    table = pd.read_csv(mips / "epr_by_phase.csv")
    assert list(table.system) == ["train"] + ["transfer"] * len(MIPS_TRANSFER)
    assert sorted(zip(table.n_particles[1:], table.phi[1:])) == [(64, 0.5), (128, 0.5)]
    log = (finished_run / "logs" / "mips" / "simulate_mips.log").read_text()
    assert "largest cluster" in log and "steps/s" in log


@pytest.mark.workflow
def test_lattice_outputs(finished_run):
    """The active solid: float64 training and held-out sets, one model, and at each side the learned
    fields beside the closed forms, whose exact Ṡ_tot is d·z·μ·k = 8 whatever the side."""
    lattice = finished_run / "results" / "lattice"
    with xr.open_dataset(lattice / "train" / "samples.nc") as ds:
        assert ds.x.shape == (2 * 2, 64, 2) and ds.x.dtype == np.float64 and ds.attrs["n_side"] == 8
    spec = json.loads((lattice / "model.json").read_text())
    assert spec["system"] == "lattice" and spec["hyperparameters"]["inputs"] == "force_imbalance"
    for n in LATTICE_SIDES:
        with xr.open_dataset(lattice / f"n{n}" / "fields.nc") as f:
            assert f.sizes["particle"] == n * n and f.sizes["sample"] == 2
            for suffix, rtol, atol in (("", 1e-4, 1e-9), ("_exact", 1e-9, 1e-15), ("_chain", 1e-9, 1e-15)):
                # the learned fields are float32, the exact ones float64
                np.testing.assert_allclose(f[f"v_g{suffix}"], -f.attrs["gamma"] * (f.g + f[f"s_g{suffix}"]),
                                           rtol=rtol, atol=atol)
            np.testing.assert_allclose(f.mu_laplacian_phi, 8.0)
    table = pd.read_csv(lattice / "epr.csv")
    assert list(table.n_side) == list(LATTICE_SIDES) and list(table.transfer) == [True]
    np.testing.assert_allclose(table.S_tot_exact, 8.0, rtol=1e-9)
    assert (table.S_tot_chain < table.S_tot_exact).all() and (table.S_tot_chain > 7.5).all()  # −2.5 % at Δt = 0.01
    assert not table.trusted.any() and (table.why.str.contains("S_tot off")).all()  # 10 steps learn nothing


@pytest.mark.workflow
def test_every_job_wrote_a_log_and_a_benchmark(finished_run):
    logs = finished_run / "logs"
    stems = ["ring/aggregate_map", "accuracy"] + [f"figures/{name}" for name in FIGURES]
    stems += [f"{exp}/{rule}" for exp in EXPERIMENTS for rule in ("simulate", "train_score", "compute_epr", "diagnose")]
    stems += [f"{exp}/{rule}" for exp in TRAP for rule in ("aggregate_map", "attention_rollout")]
    stems += ["mips/simulate_mips", "mips/train_denoising", "mips/mips_summary"]
    stems += [f"mips/{system}/mips_fields" for system in MIPS_SYSTEMS]
    stems += [f"mips/{system}/simulate_transfer" for system in MIPS_TRANSFER]
    stems += ["lattice/train/simulate_lattice", "lattice/train_lattice", "lattice/lattice_summary"]
    stems += [f"lattice/n{n}/{rule}" for n in LATTICE_SIDES for rule in ("simulate_lattice", "lattice_fields")]
    stems += [f"movies/{exp}/movie_trap" for exp in TRAP] + ["movies/mips/train/movie_mips", "movies/ring/movie_ring"]
    assert {str(p.relative_to(logs))[:-4] for p in logs.rglob("*.log")} == set(stems)
    for stem in stems:
        assert "using 1 CPU thread (XLA and BLAS)" in (logs / f"{stem}.log").read_text(), stem  # threads: 1
        bench = pd.read_csv(logs / f"{stem}.benchmark.tsv", sep="\t")
        assert {"s", "max_rss", "cpu_time"} <= set(bench.columns), stem
        assert len(bench) == 1 and bench.s.iloc[0] > 0 and bench.max_rss.iloc[0] > 0, stem


def job_intervals(log_text: str) -> list[tuple[str, datetime, datetime]]:
    """(rule, start, end) of every job in a Snakemake log (timestamps to the second)."""
    stamp = r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]\n"
    parse = lambda s: datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y")  # noqa: E731
    starts = {
        jobid: (rule, parse(when))
        for when, rule, jobid in re.findall(stamp + r"(?:local)?rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)", log_text)
    }
    ends = {jobid: parse(when) for when, jobid in re.findall(stamp + r"Finished jobid: (\d+)", log_text)}
    return [(rule, start, ends[jobid]) for jobid, (rule, start) in starts.items()]


@pytest.mark.workflow
def test_gpu_jobs_never_overlap_and_cpu_jobs_run_beside_them(finished_run):
    """With --resources gpu=1 (the fixture's command line) at most one JAX rule runs at a time."""
    first_log = sorted((finished_run / ".snakemake" / "log").glob("*.snakemake.log"))[0]
    jobs = [job for job in job_intervals(first_log.read_text()) if job[0] != "all"]
    assert {rule for rule, _, _ in jobs} == ALL_RULES
    # simulate, train, compute_epr per experiment; maps for the ring and each trap v0; attention per trap v0
    # and a movie per trap v0; MIPS: the training set, the transfer systems, training, and fields of each
    mips = 1 + len(MIPS_TRANSFER) + 1 + len(MIPS_SYSTEMS)
    lattice = 1 + len(LATTICE_SIDES) + 1 + len(LATTICE_SIDES)  # training set, held-out sets, training, fields
    mips += 1  # its movie (movies.mips of config/test.yaml: the training system)
    movies = len(TRAP) + 1  # a movie per trap v0 and the ring's flow
    assert sum(rule in JAX_RULES for rule, _, _ in jobs) == (3 * len(EXPERIMENTS) + 1 + 2 * len(TRAP) + mips + lattice
                                                              + movies)
    gpu = [job for job in jobs if job[0] in JAX_RULES]
    cpu = [job for job in jobs if job[0] not in JAX_RULES]
    overlaps = lambda a, b: a[1] < b[2] and b[1] < a[2]  # noqa: E731
    assert not [(a[0], b[0]) for i, a in enumerate(gpu) for b in gpu[i + 1:] if overlaps(a, b)]
    assert any(overlaps(a, b) for a in gpu for b in cpu), "no figure job ran beside a JAX job on 2 cores"


@pytest.mark.workflow
def test_rules_that_run_jax_declare_one_gpu_and_the_configured_threads(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "threads.yaml").write_text("threads: {jax: 2, cpu: 1}\n")
    proc = run_snakemake(work, "-n", "--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml",
                         "threads.yaml")
    jobs = planned_jobs(proc.stdout)
    assert {j["rule"] for j in jobs} == ALL_RULES | {"all"}
    for job in jobs:
        assert job["resources"].get("gpu") == ("1" if job["rule"] in JAX_RULES else None), job
        assert job["threads"] == (2 if job["rule"] in JAX_RULES else 1), job


def test_cpu_rules_keep_jax_off_the_gpu():
    """Rules without gpu=1 run beside a JAX job on a workstation: their scripts pin JAX to the CPU before
    the library is imported, or a figure drawn with jnp would grab 75% of the GPU's memory."""
    pin = 'os.environ["JAX_PLATFORMS"] = "cpu"'
    rules = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        # a rule at the top level, or indented under an `if` of its file
        for m in re.finditer(r"^( *)rule (\w+):\n((?:(?:\1    .*)?\n)*)", smk.read_text(), re.M):
            script = re.search(r"script:\n\s+\"([^\"]+)\"", m.group(3)).group(1)
            rules[m.group(2)] = ("gpu=1" in m.group(3), (smk.parent / script).resolve())
    # the figure rules come from one loop over the figure table: one script for all of them
    loop = (ROOT / "workflow" / "rules" / "figures.smk").read_text()
    assert "gpu=1" not in loop
    script = re.search(r"script:\n\s+\"([^\"]+)\"", loop).group(1)
    rules |= {rule: (False, (ROOT / "workflow" / "rules" / script).resolve()) for rule in FIGURE_RULES.values()}
    assert set(rules) == ALL_RULES
    for rule, (gpu, script) in rules.items():
        text = script.read_text()
        if gpu:
            assert pin not in text, rule
        else:
            assert pin in text and text.index(pin) < text.index("from activeflow"), (rule, script.name)


@pytest.mark.workflow
def test_adding_an_experiment_reruns_nothing_of_the_others(finished_run):
    """Each experiment's randomness comes from (seed, its name): a new experiment plans only its own jobs
    (and the accuracy table and figure, which list every experiment)."""
    data = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())  # pristine, whatever other tests edit
    ring_b = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["experiments"]["ring"]
    for block, values in data["experiments"]["ring"].items():  # the test preset's ring, as a full block
        ring_b[block].update(values)
    data["experiments"]["ring_b"] = ring_b
    (finished_run / "two.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "1", "--quiet", "rules", "--configfile", "two.yaml"],
        cwd=finished_run, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout, re.M)}
    assert counts == {"simulate": 1, "train_score": 1, "diagnose": 1, "compute_epr": 1, "accuracy": 1,
                      "figure_accuracy": 1, "all": 1, "total": 7}, proc.stdout


@pytest.mark.workflow
def test_nothing_to_do_after_a_run_and_param_edit_reruns_downstream(finished_run, tmp_path):
    assert "Nothing to be done" in snakemake(finished_run, "-n").stdout
    work = clone_run(finished_run, tmp_path / "clone")
    cfg = work / "config" / "test.yaml"
    original = cfg.read_text()
    data = yaml.safe_load(original)
    cfg.write_text(yaml.safe_dump(data, sort_keys=True))  # reordered keys alone rerun nothing
    assert "Nothing to be done" in snakemake(work, "-n").stdout

    data["experiments"]["ring"]["training"]["learning_rate"] = 2e-3
    cfg.write_text(yaml.safe_dump(data))
    assert plan(work) == RING_DOWNSTREAM_OF_TRAINING  # not simulate, not fig12

    # a figure-only setting: one figure's resolution reruns that figure alone ...
    data = yaml.safe_load(original)
    data["figures"]["dpi_override"] = {"fig03-ring-system-epr": 90}
    cfg.write_text(yaml.safe_dump(data))
    assert plan(work) == Counter(["figure_fig03", "all"])
    # ... and the shared resolution reruns every figure, nothing else
    data = yaml.safe_load(original)
    data["figures"]["dpi"] = 90
    cfg.write_text(yaml.safe_dump(data))
    assert plan(work) == Counter([*FIGURE_RULES.values(), "all"])

    # adding a v0 to the sweep adds that experiment's chain and redoes the cross-experiment table only
    data = yaml.safe_load(original)
    data["experiments"]["linear"]["parameters"]["v0"] = [0.5, 1.0]
    cfg.write_text(yaml.safe_dump(data))
    new = "[experiment=linear-v0_0.5]"
    assert plan(work) == Counter(
        [f"{rule}{new}" for rule in ("simulate", "train_score", "diagnose", "compute_epr")]
        + ["accuracy", "figure_accuracy", "all"]
    )

    data = yaml.safe_load(original)
    data["figures"]["dpi_override"] = {"fig99-no-such-figure": 90}
    cfg.write_text(yaml.safe_dump(data))
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0 and "fig99-no-such-figure" in proc.stdout + proc.stderr

    # a deleted output is a target of `all`: a plain rerun rebuilds it (and what depends on it)
    cfg.write_text(original)
    (work / "results" / "ring" / "model.json").unlink()
    assert plan(work) == RING_DOWNSTREAM_OF_TRAINING


@pytest.mark.workflow
def test_single_stage_commands_from_the_readme(finished_run):
    """--forcerun RULE --until RULE, --forcerun RULE, -f TARGET and --summary on an up-to-date run."""
    assert plan(finished_run, "--forcerun", "diagnose", "--until", "diagnose") == Counter(
        [f"diagnose[experiment={exp}]" for exp in EXPERIMENTS]
    )
    planned = plan(finished_run, "--forcerun", "train_score")
    assert {job.partition("[")[0] for job in planned} == ALL_RULES - MIPS_RULES - LATTICE_RULES - {"simulate", "figure_fig12"} | {"all"}
    assert planned["train_score[experiment=ring]"] == 1 and planned["simulate[experiment=ring]"] == 0
    assert plan(finished_run, "-f", "results/ring/epr_summary.csv") == Counter(["compute_epr[experiment=ring]"])
    assert plan(finished_run, "-f", "results/figures/fig15-ring-diagnostics.png") == Counter(["figure_fig15"])

    summary = pd.read_csv(io.StringIO(snakemake(finished_run, "--summary").stdout), sep="\t")
    assert set(summary.rule) == ALL_RULES
    assert (summary.status == "ok").all() and (summary.plan == "no update").all(), summary


@pytest.mark.workflow
def test_report_has_every_figure_with_its_caption_and_the_tables(finished_run):
    snakemake(finished_run, "--report", "report.html")
    html = (finished_run / "report.html").read_text()
    # offline: everything inlined, nothing fetched
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=[\"']?https?:", html)
    results = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", html, re.S).group(1))
    categories = json.loads(re.search(r"var categories = (\{.*?\});\s*</script>", html, re.S).group(1))
    placed = {path: (cat, sub) for cat, subs in categories.items() for sub, paths in subs.items() for path in paths}
    expected = {}
    for name in FIGURES:
        for ext in ("png", "pdf"):
            expected[f"results/figures/{name}.{ext}"] = None
    for exp in EXPERIMENTS:
        for table in ("diagnostics.csv", "epr_summary.csv"):
            expected[f"results/{exp}/{table}"] = ("Tables", exp)
    expected["results/accuracy.csv"] = ("Tables", "All experiments")
    expected["results/mips/epr_by_phase.csv"] = ("Tables", "MIPS")
    expected["results/lattice/epr.csv"] = ("Tables", "Active solid")
    for exp in TRAP:
        expected[f"results/movies/{exp}-epr.mp4"] = ("Movies", exp)
    expected["results/movies/mips/train-epr.mp4"] = ("Movies", "MIPS")
    expected["results/movies/ring-flow.mp4"] = ("Movies", "Ring")
    assert set(placed) == set(expected)
    table = {fig.name: fig for fig in FIGURE_TABLE}
    for path, place in expected.items():
        caption = results[path]["caption"]
        assert caption and "system-message" not in caption and "problematic" not in caption, (path, caption)
        name = Path(path).stem
        if name in table:  # category, subcategory and caption from the figure table
            fig = table[name]
            assert placed[path] == (fig.category, fig.subcategory), path
            if name.startswith("fig"):
                assert f"Reproduces <strong>Fig. {int(name[3:5])}</strong>" in caption, (path, caption)
            if fig.family in ("ring", "trap") and name != "fig12-force-smoothing":
                assert f'literal">{fig.family}</tt>' in caption  # the experiment drawn, from the config
            if name == "accuracy-epr":
                assert "Not in the paper" in caption
            # the verdict, read when the report is made: the test run's tiny trap score is not trusted
            labels = results[path].get("labels") or {}
            if fig.trust and fig.family == "trap":
                assert str(labels.get("results", "")).startswith("not converged: trap-v0_0.5"), (path, labels)
        else:
            assert placed[path] == place, path
    assert "Experiments configured in this run: ring, linear, trap" in html


@pytest.mark.workflow
def test_local_profile_gives_all_cores_and_one_gpu(finished_run, tmp_path):
    work = clone_run(finished_run, tmp_path / "clone")
    proc = run_snakemake(
        work, "--workflow-profile", "profiles/local", "--configfile", "config/test.yaml",
        "--forcerun", "figure_fig12", "--until", "figure_fig12", "--touch",
    )
    log = proc.stdout + proc.stderr
    assert "workflow specific profile profiles/local" in log
    assert 'Provided resources: gpu=Resource("gpu", 1)' in log
    assert re.search(r"Provided cores: [1-9]", log)


SLURM_PLACEHOLDERS = {"account": "YOUR_ACCOUNT", "cpu": "YOUR_CPU_PARTITION", "gpu": "YOUR_GPU_PARTITION"}


def test_slurm_profile_leaves_only_partition_and_account_names_to_edit():
    text = (ROOT / "profiles" / "slurm" / "profile.yaml").read_text()
    assert set(re.findall(r"\bYOUR_\w+", text)) == set(SLURM_PLACEHOLDERS.values())
    for placeholder in SLURM_PLACEHOLDERS.values():
        assert text.count(placeholder) == 1, f"{placeholder} should be set once (a YAML anchor) and reused"
    assert len(re.findall(r"#\s*EDIT:", text)) == 3
    assert "gpu_model" in text
    assert not (ROOT / "profiles" / "default").exists(), "profiles/default would be merged into every run"


@pytest.mark.workflow
def test_slurm_profile_dry_run_plans_partitions_and_resources(tmp_path):
    work = copy_workflow(tmp_path)
    proc = run_snakemake(work, "-n", "--profile", "profiles/slurm", "--configfile", "config/test.yaml")
    assert "Using profile profiles/slurm" in proc.stderr and "workflow specific profile" not in proc.stderr
    jobs = [j for j in planned_jobs(proc.stdout) if j["rule"] != "all"]
    assert {j["rule"] for j in jobs} == ALL_RULES
    for job in jobs:
        res = job["resources"]
        assert res["slurm_account"] == SLURM_PLACEHOLDERS["account"], job
        assert int(res["runtime"]) > 0 and int(res["mem_mb"]) > 0 and int(res["cpus_per_task"]) > 0, job
        if job["rule"] in JAX_RULES:
            assert res["slurm_partition"] == SLURM_PLACEHOLDERS["gpu"] and res["gpu"] == "1", job
        else:
            assert res["slurm_partition"] == SLURM_PLACEHOLDERS["cpu"] and "gpu" not in res, job
    train = next(j for j in jobs if j["rule"] == "train_score")["resources"]
    figure = next(j for j in jobs if j["rule"] == "figure_fig02")["resources"]
    assert int(train["runtime"]) > int(figure["runtime"]) and int(train["mem_mb"]) > int(figure["mem_mb"])


FAKE_SLURM = {
    # record each submission and answer with a job id (as `sbatch --parsable` does)
    "sbatch": 'echo "$*" >> "$FAKE_SBATCH_LOG"; echo $((1000 + $(wc -l < "$FAKE_SBATCH_LOG")))',
    "sacctmgr": "echo YOUR_ACCOUNT",  # the account the profile names is valid
    **{tool: "exit 0" for tool in ("sinfo", "sacct", "squeue", "scontrol", "scancel", "sshare")},
}


@pytest.mark.workflow
def test_slurm_submits_gpu_jobs_side_by_side_despite_a_local_gpu_limit(finished_run, tmp_path):
    """The SLURM executor with stand-in SLURM commands: three independent GPU jobs, and the user's habit
    `--resources gpu=1` on the command line; `gpu` is a local resource, so all three are submitted at
    once, each to the GPU partition with one GPU (without the scope only one would be queued)."""
    work = clone_run(finished_run, tmp_path / "clone")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in FAKE_SLURM.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    submissions = tmp_path / "sbatch.log"
    submissions.touch()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SBATCH_LOG=str(submissions))
    gpu_rules = ["compute_epr", "aggregate_map", "attention_rollout"]
    targets = ["results/ring/epr_summary.csv", "results/ring/epr_map.nc", f"results/{TRAP[-1]}/attention.nc"]
    proc = subprocess.Popen(
        [SNAKEMAKE, "--profile", "profiles/slurm", "--configfile", "config/test.yaml", "--resources", "gpu=1",
         "--forcerun", *gpu_rules, "--", *targets],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and len(submissions.read_text().splitlines()) < 3:
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the stand-in jobs never finish
        output = proc.communicate()[0]
    calls = submissions.read_text().splitlines()
    assert sorted(re.search(r"--comment rule_(\w+?)_wildcards", c).group(1) for c in calls) == sorted(gpu_rules), (
        calls, output[-3000:])
    for call in calls:
        assert f"-p {SLURM_PLACEHOLDERS['gpu']}" in call and "--gpus=1" in call and f"-A {SLURM_PLACEHOLDERS['account']}" in call
        assert re.search(r"-t \d+", call) and re.search(r"--mem \d+", call) and "--cpus-per-task=" in call
        assert "--signal=TERM@120" in call, call  # training saves its state ahead of the time limit


@pytest.mark.workflow
def test_lint_and_format(tmp_path):
    work = copy_workflow(tmp_path)
    proc = snakemake(work, "--lint", check=False)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    fmt = subprocess.run([SNAKEFMT, "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def descendants_running(pid: int, marker: str) -> list:
    import psutil

    procs = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if any(marker in part for part in child.cmdline()):
                procs.append(child)
        except psutil.NoSuchProcess:
            pass
    return procs


@pytest.mark.workflow
def test_preempted_training_job_is_resumed_by_snakemake(tmp_path):
    """A SLURM preemption kills the job's process; Snakemake (--retries) reruns the job, which resumes
    from the checkpoint Snakemake left alone (that a resumed run is bitwise the uninterrupted one is
    tests/test_checkpoint.py's)."""
    work = copy_workflow(tmp_path)
    (work / "long.yaml").write_text(yaml.safe_dump(
        {"experiments": {"ring": {"training": {"steps": 400, "checkpoint_every": 20, "log_every": 100}}}}))
    target = "results/ring/model.eqx"
    args = [SNAKEMAKE, target, "--cores", "1", "--configfile", "config/test.yaml", "long.yaml"]
    ckpt = work / "results" / "ring" / "checkpoints" / "train_score.ckpt"
    proc = subprocess.Popen([*args, "--retries", "1"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = False
    while proc.poll() is None and not killed:
        if ckpt.exists():
            for job in descendants_running(proc.pid, "train_score"):
                job.kill()  # SIGKILL: what is left after SLURM's grace period
                killed = True
        time.sleep(0.01)
    out, _ = proc.communicate(timeout=600)
    assert killed, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    assert "Error in rule train_score" in out  # the first attempt died ...
    log = (work / "logs" / "ring" / "train_score.log").read_text()
    assert "resuming from checkpoint results/ring/checkpoints/train_score.ckpt at step" in log  # ... the retry resumed
    assert not ckpt.exists() and (work / target).exists()


@pytest.mark.workflow
def test_notebook_runs_on_the_finished_run(finished_run, monkeypatch):
    """notebooks/explore_results.ipynb, executed on this run: every cell runs and each figure is drawn."""
    monkeypatch.setenv("ACTIVEFLOW_RUN", str(finished_run))
    nb = nbformat.read(ROOT / "notebooks" / "explore_results.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells), "commit the notebook without outputs"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 3
    printed = "".join(out.get("text", "") for out in outputs)
    assert "trap-v0_0.5" in printed and "cluster_surface" in printed, printed
