"""Per-particle score, probability-flow velocity, their exact divergences and the entropy production
rates, on held-out snapshots; computed by the stage `compute_epr` (the one that evaluates the
network there).

For particle i (paper (16), (18)):
    total EPR density  |v^i|²_{D⁻¹} = |v_x^i|²/D_x + |v_g^i|²/D_g,
    system EPR         ∇_i·v^i = ∇_{x^i}·v_x^i + ∇_{g^i}·v_g^i   (exact Jacobian blocks).
Globally Ṡ_tot = E_ρ Σ_i |v^i|²_{D⁻¹} (21) and E_ρ[∇·v] = 0 (15).
"""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from activeflow.analysis.reference import active_work_epr, stein_epr
from activeflow.analysis.stats import mean_stderr
from activeflow.chunking import map_chunks
from activeflow.io.cf import LENGTH, ONE, RATE, VELOCITY_X, attrs
from activeflow.numerics.divergence import ScoreFn
from activeflow.numerics.flow import evaluate_fields, velocity
from activeflow.physics.linear import exact
from activeflow.physics.systems import AOUPSystem, Linear

PARTICLE = ("sample", "particle")
VECTOR = ("sample", "particle", "dim")


def epr_dataset(score_fn: ScoreFn, system: AOUPSystem, x: np.ndarray, g: np.ndarray) -> xr.Dataset:
    """Per snapshot and particle: v, its divergences and the EPR densities (the epr.nc contract)."""
    f = evaluate_fields(score_fn, system, x, g)
    v_x_sq, v_g_sq = np.sum(f["v_x"] ** 2, -1), np.sum(f["v_g"] ** 2, -1)
    epr_x, epr_g = v_x_sq / system.Dx, v_g_sq / system.Dg
    return xr.Dataset(
        {
            "x": (VECTOR, x, attrs("position x (displacement for the ring)", LENGTH)),
            "g": (VECTOR, g, attrs("active force g", ONE)),
            "s_x": (VECTOR, f["s_x"], attrs("score, x part", "length_unit-1")),
            "s_g": (VECTOR, f["s_g"], attrs("score, g part", ONE)),
            "v_x": (VECTOR, f["v_x"], attrs("probability-flow velocity, x part", VELOCITY_X)),
            "v_g": (VECTOR, f["v_g"], attrs("probability-flow velocity, g part", RATE)),
            "div_s_x": (PARTICLE, f["div_s_x"], attrs("∇_{x^i}·s_x^i", "length_unit-2")),
            "div_s_g": (PARTICLE, f["div_s_g"], attrs("∇_{g^i}·s_g^i", ONE)),
            "div_x_v_x": (PARTICLE, f["div_v_x"], attrs("∇_{x^i}·v_x^i", RATE)),
            "div_g_v_g": (PARTICLE, f["div_v_g"], attrs("∇_{g^i}·v_g^i", RATE)),
            "div_v": (PARTICLE, f["div_v_x"] + f["div_v_g"], attrs("system EPR ∇_i·v^i", RATE)),
            "v_x_sq": (PARTICLE, v_x_sq, attrs("|v_x^i|²", "length_unit2 time_unit-2")),
            "v_g_sq": (PARTICLE, v_g_sq, attrs("|v_g^i|²", "time_unit-2")),
            "epr_x": (PARTICLE, epr_x, attrs("|v_x^i|²/D_x", RATE)),
            "epr_g": (PARTICLE, epr_g, attrs("|v_g^i|²/D_g", RATE)),
            "epr_total": (PARTICLE, epr_x + epr_g, attrs("total EPR density |v^i|²_{D⁻¹}", RATE)),
        }
    )


QUANTITIES = {
    "S_tot": ("epr_total", "Ṡ_tot = E Σ_i |v^i|²_{D⁻¹}"),
    "S_tot_x": ("epr_x", "E Σ_i |v_x^i|²/D_x"),
    "S_tot_g": ("epr_g", "E Σ_i |v_g^i|²/D_g"),
    "E_div_v": ("div_v", "E[∇·v] (zero at stationarity)"),
    "E_div_x_v_x": ("div_x_v_x", "E Σ_i ∇_{x^i}·v_x^i"),
    "E_div_g_v_g": ("div_g_v_g", "E Σ_i ∇_{g^i}·v_g^i"),
}


def add_score_free(ds: xr.Dataset, system: AOUPSystem) -> xr.Dataset:
    """Per-snapshot score-free Ṡ_tot estimates (see `reference`), where D is invertible."""
    if system.Dx <= 0:
        return ds
    x, g = ds.x.values, ds.g.values
    return ds.assign(
        score_free=("sample", active_work_epr(system, x, g), attrs("(v0/D_x) Σ_i g^i·b_x^i", RATE)),
        score_free_stein=("sample", stein_epr(system, x, g), attrs("bᵀD⁻¹b + ∇·b", RATE)),
    )


def exact_values(system: AOUPSystem) -> dict[str, float]:
    """Closed-form values of the summary quantities, where the system has them (linear)."""
    if not isinstance(system, Linear):
        return {}
    ex = exact(system)
    div_x, div_g = ex.divergence_parts()
    S_x, S_g = ex.epr_parts()
    values = dict(S_tot=ex.epr_total(), S_tot_x=S_x, S_tot_g=S_g, E_div_v=0.0,
                  E_div_x_v_x=float(div_x.sum()), E_div_g_v_g=float(div_g.sum()))
    # round-off of the closed forms (e.g. 1e-31 at v0 = 0) would give absurd relative errors
    scale = max(abs(v) for v in values.values()) + float(np.trace(ex.precision)) * system.Dx
    return {k: (v if abs(v) > 1e-12 * scale else 0.0) for k, v in values.items()}


def summary(ds: xr.Dataset, system: AOUPSystem, replica: np.ndarray | None,
            baseline: np.ndarray | None = None) -> pd.DataFrame:
    """Long table (quantity, estimator, mean, stderr): the learned values; for Ṡ_tot the score-free
    estimates and the paired difference learned − score-free (same snapshots, so its error is small);
    closed forms where known; the per-snapshot Ṡ_tot of a zero-training `baseline` score
    (`linear_features`); and where D = εI, `implied_score_mse` = (truth − learned)/ε (see
    `analysis.accuracy`). Standard errors come from replica means."""
    n = ds.sizes["sample"]
    rows = []

    def add(quantity, estimator, values, meaning):
        mean, se = mean_stderr(values, replica)
        rows.append(dict(quantity=quantity, estimator=estimator, mean=mean, stderr=se, n_samples=n, meaning=meaning))

    for name, (var, meaning) in QUANTITIES.items():
        add(name, "learned", ds[var].sum("particle").values, meaning)
    if "score_free" in ds:
        learned = ds.epr_total.sum("particle").values
        add("S_tot", "score_free", ds.score_free.values, "(v0/D_x) E[g·b_x], no score")
        add("S_tot", "score_free_stein", ds.score_free_stein.values, "E[bᵀD⁻¹b + ∇·b], no score")
        add("S_tot", "learned_minus_score_free", learned - ds.score_free.values, "paired difference")
    if baseline is not None:
        add("S_tot", "linear_features", baseline, "closed-form linear-feature score, no training")
    exact = exact_values(system)
    for name, value in exact.items():
        rows.append(dict(quantity=name, estimator="exact", mean=value, stderr=0.0, n_samples=0, meaning="closed form"))
    if system.Dx == system.Dg and ("S_tot" in exact or "score_free" in ds):
        learned = ds.epr_total.sum("particle").values
        truth = exact["S_tot"] if "S_tot" in exact else ds.score_free.values
        add("S_tot", "implied_score_mse", (truth - learned) / system.Dx, "(truth − learned)/ε = E|s* − ŝ|² "
            "for a score-matching optimum over a linear class containing D⁻¹b")
    return pd.DataFrame(rows)


def epr_total_of(score_fn, system: AOUPSystem, x: np.ndarray, g: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Per-snapshot Σ_i |v^i|²_{D⁻¹} of a score (no divergences needed)."""

    @eqx.filter_jit
    def one_chunk(xs, gs):
        def one(xi, gi):
            s_x, s_g = score_fn(xi, gi)
            v_x, v_g = velocity(system, xi, gi, s_x, s_g)
            return jnp.sum(v_x**2) / system.Dx + jnp.sum(v_g**2) / system.Dg
        return jax.vmap(one)(xs, gs)

    return map_chunks(one_chunk, x, g, chunk)
