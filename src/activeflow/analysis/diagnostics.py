"""Invariants of the stationary FPE on held-out snapshots (Sec. 4.5, Figs. 15, 18), and whether each
is zero to within its statistical error or a tolerance.

Per snapshot, divided by the number of particles N:
  fpe_residual  ∇·v + v·s               zero pointwise (23)
  div_v         ∇·v                     zero mean (15)
  v_dot_s       v·s                     zero mean (integration by parts of (15))
  sm_identity_x |s_x|² + ∇_x·s_x         zero mean (score matching at its optimum)
  sm_identity_g |s_g|² + ∇_g·s_g         zero mean

Each invariant is a sum of terms that cancel for the exact score; its `scale` is the mean size of those
terms, each summed over the particles of a snapshot (E[|a| + |b|] for a + b, e.g. E|s_x|² + E|∇_x·s_x| for
sm_identity_x). The FPE residual is split into its four terms, the x and g parts of ∇·v and of v·s: its
two halves ∇·v and v·s each have zero mean for the exact score, so their sizes would measure only the
noise. An invariant is `off` when its mean is both statistically (|μ| > z_threshold·s.e.) and practically
(|μ| > invariant_tolerance·scale) away from zero; the three in units of a rate (fpe_residual, div_v,
v_dot_s) also need |μ| > abs_tolerance/N, the per-particle share of the floor Ṡ_tot is judged with: at
v0 = 0 the exact v vanishes, so do their terms, and without the floor a learned v of 10⁻⁴ would be off.
With the scales of the parts, invariant_tolerance reads as a relative score error; how it maps to the
error of Ṡ_tot and of the per-particle EPR on the linear system: docs/methods.md.
"""

import numpy as np
import pandas as pd
import xarray as xr

from activeflow.analysis.stats import mean_stderr
from activeflow.io.cf import ONE, RATE, attrs

INVARIANTS = ("fpe_residual", "div_v", "v_dot_s", "sm_identity_x", "sm_identity_g")
RATES = ("fpe_residual", "div_v", "v_dot_s")  # in units of a rate, as Ṡ_tot
REQUIRED = ("s_x", "s_g", "v_x", "v_g", "div_s_x", "div_s_g", "div_x_v_x", "div_g_v_g")


def invariants(epr: xr.Dataset) -> xr.Dataset:
    """The invariants per snapshot from the per-particle fields of epr.nc (no network evaluation), and
    the size of the two terms that cancel in each (`{name}_scale`)."""
    n = epr.sizes["particle"]

    def total(name: str) -> np.ndarray:
        a = epr[name].values
        return a.reshape(a.shape[0], -1).sum(-1) / n

    def dot(a: str, b: str) -> np.ndarray:
        return (epr[a].values * epr[b].values).reshape(epr.sizes["sample"], -1).sum(-1) / n

    div_x, div_g = total("div_x_v_x"), total("div_g_v_g")
    vs_x, vs_g = dot("v_x", "s_x"), dot("v_g", "s_g")
    terms = dict(  # the terms that cancel, and their units
        fpe_residual=((div_x, div_g, vs_x, vs_g), RATE),
        div_v=((div_x, div_g), RATE),
        v_dot_s=((vs_x, vs_g), RATE),
        sm_identity_x=((dot("s_x", "s_x"), total("div_s_x")), "length_unit-2"),
        sm_identity_g=((dot("s_g", "s_g"), total("div_s_g")), ONE),
    )
    data = {}
    for name, (parts, units) in terms.items():
        data[name] = ("sample", sum(parts), attrs(f"{name} per particle", units))
        data[f"{name}_scale"] = ("sample", sum(np.abs(p) for p in parts),
                                 attrs(f"size of the terms of {name}, per particle", units))
    return xr.Dataset(data, attrs=dict(n_particles=n))


def summary(ds: xr.Dataset, replica: np.ndarray | None, thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """μ, σ, standard error and scale per invariant; with `thresholds` (z_threshold,
    invariant_tolerance), whether it is `off`."""
    rows = []
    for name in INVARIANTS:
        values = ds[name].values
        mean, se = mean_stderr(values, replica)
        row = dict(invariant=name, mean=mean, std=float(np.std(values, ddof=1)), stderr=se, n_samples=values.size)
        if f"{name}_scale" in ds:
            row["scale"] = float(ds[f"{name}_scale"].mean())
        if thresholds is not None:
            floor = thresholds.get("abs_tolerance", 0.0) / ds.attrs.get("n_particles", 1) if name in RATES else 0.0
            row["off"] = invariant_off(mean, se, row.get("scale", 0.0), thresholds, floor)
        rows.append(row)
    return pd.DataFrame(rows)


def invariant_off(mean: float, stderr: float, scale: float, thresholds: dict[str, float], floor: float = 0.0) -> bool:
    statistical = not abs(mean) <= thresholds["z_threshold"] * stderr  # NaN s.e. counts as resolved
    return bool(statistical and abs(mean) > max(thresholds["invariant_tolerance"] * scale, floor))
