"""End to end: the real Snakemake workflow on config/test.yaml in a temporary copy of the repository."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

EXPECTED_VARIABLES = {
    "samples.nc": {"x", "g", "replica", "time"},
    "heldout.nc": {"x", "g", "replica", "time"},
    "trajectories.nc": {"x", "g"},
    "epr.nc": {"x", "g", "v_x", "v_g", "div_x_v_x", "div_g_v_g", "div_v", "epr_x", "epr_g", "epr_total", "score_free"},
    "diagnostics.nc": {"fpe_residual", "div_v", "v_dot_s", "sm_identity_x", "sm_identity_g"},
    "epr_map.nc": {"density", "counts", "v_x", "v_g", "epr_total", "div_v", "current_norm", "current_x", "current_g"},
}
FIGURES = ["fig02-ring-flow", "fig03-ring-system-epr", "fig12-force-smoothing",
           "fig13-ring-decomposition", "fig14-ring-pointwise", "fig15-ring-diagnostics", "accuracy-epr"]
LINEAR = ["linear-v0_0", "linear-v0_1"]  # the v0 sweep of config/test.yaml


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "envs", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml", *args],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_rules(stdout: str) -> set[str]:
    """Rule names from the job-count table that `snakemake -n --quiet rules` prints."""
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", stdout, re.M)} - {"total"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(work)
    return work


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
    accuracy = pd.read_csv(finished_run / "results" / "accuracy.csv")
    assert set(accuracy.experiment) == {"ring", *LINEAR}
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
def test_nothing_to_do_after_a_run_and_param_edit_reruns_downstream(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "-n").stdout
    cfg = finished_run / "config" / "test.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["experiments"]["ring"]["training"]["learning_rate"] = 2e-3
    cfg.write_text(yaml.safe_dump(data))  # also reorders every key: that alone must rerun nothing
    planned = planned_rules(snakemake(finished_run, "-n", "--quiet", "rules").stdout)
    assert planned == {"train_score", "diagnose", "compute_epr", "aggregate_map", "figure_fig02", "figure_fig03",
                       "figure_fig13", "figure_fig14", "figure_fig15", "accuracy", "figure_accuracy", "all"}


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
    from the checkpoint Snakemake left alone, and the model is bitwise that of an uninterrupted run."""
    work = copy_workflow(tmp_path)
    (work / "long.yaml").write_text(yaml.safe_dump(
        {"experiments": {"ring": {"training": {"steps": 1000, "checkpoint_every": 20, "log_every": 100}}}}))
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
    assert not ckpt.exists()
    resumed = (work / target).read_bytes()

    subprocess.run([*args, "--forcerun", "train_score"], cwd=work, capture_output=True, check=True, timeout=600)
    assert "resuming" not in (work / "logs" / "ring" / "train_score.log").read_text()
    assert (work / target).read_bytes() == resumed
