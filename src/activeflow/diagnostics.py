"""Stage `diagnose`: invariants of the stationary FPE on held-out snapshots (Sec. 4.5, Figs. 15, 18).

Per snapshot, divided by the number of particles N:
  fpe_residual  ∇·v + v·s               zero pointwise (23)
  div_v         ∇·v                     zero mean (15)
  v_dot_s       v·s                     zero mean (integration by parts of (15))
  sm_identity_x |s_x|² + ∇_x·s_x         zero mean (score matching at its optimum)
  sm_identity_g |s_g|² + ∇_g·s_g         zero mean
"""

import logging

import numpy as np
import pandas as pd
import xarray as xr

from activeflow import io
from activeflow.flow import evaluate_fields
from activeflow.divergence import ScoreFn
from activeflow.systems import AOUPSystem
from activeflow.stats import mean_stderr

log = logging.getLogger(__name__)

INVARIANTS = ("fpe_residual", "div_v", "v_dot_s", "sm_identity_x", "sm_identity_g")


def invariants(score_fn: ScoreFn, system: AOUPSystem, x: np.ndarray, g: np.ndarray) -> xr.Dataset:
    f = evaluate_fields(score_fn, system, x, g)
    n = x.shape[1]

    def total(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0], -1).sum(-1) / n

    div_v = total(f["div_v_x"] + f["div_v_g"])
    v_dot_s = total(f["v_x"] * f["s_x"]) + total(f["v_g"] * f["s_g"])
    values = dict(
        fpe_residual=div_v + v_dot_s,
        div_v=div_v,
        v_dot_s=v_dot_s,
        sm_identity_x=total(f["s_x"] ** 2) + total(f["div_s_x"]),
        sm_identity_g=total(f["s_g"] ** 2) + total(f["div_s_g"]),
    )
    return xr.Dataset({k: ("sample", v, {"long_name": f"{k} per particle"}) for k, v in values.items()})


def summary(ds: xr.Dataset, replica: np.ndarray | None) -> pd.DataFrame:
    rows = []
    for name in INVARIANTS:
        values = ds[name].values
        mean, se = mean_stderr(values, replica)
        rows.append(dict(invariant=name, mean=mean, std=float(np.std(values, ddof=1)), stderr=se, n_samples=values.size))
    return pd.DataFrame(rows)


def run(
    model_path: str, spec_path: str, samples_path: str, nc_path: str, csv_path: str, expected: dict | None = None
) -> None:
    """Stage `diagnose`; `expected` (the config's system, parameters, network) guards against a stale model."""
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    ds = invariants(model, model.system, samples.x.values, samples.g.values)
    table = summary(ds, samples.replica.values if "replica" in samples else None)
    io.write_netcdf(ds, nc_path, dict(stage="diagnose", model=str(model_path), samples=str(samples_path), spec=spec))
    io.write_csv(table, csv_path)
    for row in table.itertuples():
        log.info("%-14s μ = %+.4g  σ = %.4g  s.e. = %.2g", row.invariant, row.mean, row.std, row.stderr)
