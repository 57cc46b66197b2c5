"""Stage `diagnose`: invariants of the stationary FPE on held-out snapshots (Sec. 4.5, Figs. 15, 18).

Per snapshot, divided by the number of particles N:
  fpe_residual  ∇·v + v·s               zero pointwise (23)
  div_v         ∇·v                     zero mean (15)
  v_dot_s       v·s                     zero mean (integration by parts of (15))
  sm_identity_x |s_x|² + ∇_x·s_x         zero mean (score matching at its optimum)
  sm_identity_g |s_g|² + ∇_g·s_g         zero mean
"""


import numpy as np
import pandas as pd
import xarray as xr

from activeflow.analysis.stats import mean_stderr

INVARIANTS = ("fpe_residual", "div_v", "v_dot_s", "sm_identity_x", "sm_identity_g")


REQUIRED = ("s_x", "s_g", "v_x", "v_g", "div_s_x", "div_s_g", "div_x_v_x", "div_g_v_g")


def invariants(epr: xr.Dataset) -> xr.Dataset:
    """The invariants per snapshot from the per-particle fields of epr.nc (no network evaluation)."""
    n = epr.sizes["particle"]

    def total(name: str) -> np.ndarray:
        a = epr[name].values
        return a.reshape(a.shape[0], -1).sum(-1) / n

    def dot(a: str, b: str) -> np.ndarray:
        return (epr[a].values * epr[b].values).reshape(epr.sizes["sample"], -1).sum(-1) / n

    div_v = total("div_x_v_x") + total("div_g_v_g")
    v_dot_s = dot("v_x", "s_x") + dot("v_g", "s_g")
    values = dict(
        fpe_residual=div_v + v_dot_s,
        div_v=div_v,
        v_dot_s=v_dot_s,
        sm_identity_x=dot("s_x", "s_x") + total("div_s_x"),
        sm_identity_g=dot("s_g", "s_g") + total("div_s_g"),
    )
    return xr.Dataset({k: ("sample", v, {"long_name": f"{k} per particle"}) for k, v in values.items()})


def summary(ds: xr.Dataset, replica: np.ndarray | None) -> pd.DataFrame:
    rows = []
    for name in INVARIANTS:
        values = ds[name].values
        mean, se = mean_stderr(values, replica)
        rows.append(dict(invariant=name, mean=mean, std=float(np.std(values, ddof=1)), stderr=se, n_samples=values.size))
    return pd.DataFrame(rows)
