"""End to end: the real Snakemake workflow on config/test.yaml in a temporary copy of the repository."""

import json
import re
import shutil
import subprocess
import sys
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
def test_nothing_to_do_after_a_run_and_param_edit_reruns_downstream(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "-n").stdout
    cfg = finished_run / "config" / "test.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["experiments"]["ring"]["training"]["learning_rate"] = 2e-3
    cfg.write_text(yaml.safe_dump(data))  # also reorders every key: that alone must rerun nothing
    planned = planned_rules(snakemake(finished_run, "-n", "--quiet", "rules").stdout)
    assert planned == {"train_score", "diagnose", "compute_epr", "aggregate_map", "figure_fig02", "figure_fig03",
                       "figure_fig13", "figure_fig14", "figure_fig15", "accuracy", "figure_accuracy", "all"}


@pytest.mark.workflow
def test_bad_config_is_refused_before_any_job(tmp_path):
    work = copy_workflow(tmp_path)
    cfg = work / "config" / "test.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["experiments"]["ring"]["training"]["optimiser"] = "sgd"  # misspelt key
    cfg.write_text(yaml.safe_dump(data))
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    assert "optimiser" in proc.stdout + proc.stderr
    assert not (work / "results").exists()
