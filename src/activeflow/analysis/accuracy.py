"""One table comparing every learned Ṡ_tot with a reference it can be checked against, and a verdict per
experiment.

The truth is the closed form where the system has one (linear), else the score-free estimate (see
`reference`). z is the deviation in standard errors: (learned − exact)/s.e.(learned), or, against the
score-free estimate, the mean paired difference over the same snapshots divided by its standard error.
A value is flagged `off` when it is both statistically (|z| > z_threshold) and practically
(|learned − truth| > max(rel_tolerance·|truth|, abs_tolerance)) distinguishable from the truth. E[∇·v],
zero for the exact score by stationarity, is an invariant rather than a value: its practical tolerance is
invariant_tolerance times the size of its parts, |E∇_x·v_x| + |E∇_g·v_g| (at least abs_tolerance), as
for `div_v` of the diagnostics (a score scaled by 1 + α moves it by about α of its parts; docs/methods.md).

An experiment is `trusted` when none of its values is off and none of the FPE invariants of its
diagnostics.csv is off (`diagnostics.invariant_off`); `why` lists what is not. Beside the learned Ṡ_tot
the table keeps the zero-training baseline (`linear_features`: the closed-form linear-feature score) and,
where D = εI, `implied_score_mse` = (truth − learned)/ε: for a score that is the score-matching optimum
over a linear class containing D⁻¹b, Ṡ_tot(ŝ) = Ṡ_tot(s*) − ε E|s* − ŝ|² exactly, so this is its mean
squared error per snapshot.

MIPS systems (ε = 0) join the table from their `epr_by_phase.csv` rows (`athermal_rows`): the learned
Ṡ_tot per particle against the score-free μE[ΔΦ] per particle, with the verdict of `by_phase`; so do the
active solid's sides (`epr.csv`), against the closed form d·z·μ·k.
"""

from typing import Any

import numpy as np
import pandas as pd

COLUMNS = [
    "experiment", "system", "v0", "quantity", "learned", "learned_se", "reference", "reference_se",
    "exact", "truth", "rel_error", "z", "off", "linear_features", "linear_features_se", "implied_score_mse",
    "trusted", "why",
]


def _value(summary: pd.DataFrame, quantity: str, estimator: str) -> tuple[float, float]:
    row = summary[(summary.quantity == quantity) & (summary.estimator == estimator)]
    if row.empty:
        return float("nan"), float("nan")
    return float(row["mean"].iloc[0]), float(row["stderr"].iloc[0])


def _z(deviation: float, stderr: float) -> float:
    """Deviation in standard errors; a constant estimator (s.e. 0) is either exact or infinitely off."""
    if stderr > 0:
        return deviation / stderr
    return 0.0 if abs(deviation) < 1e-9 else float(np.sign(deviation) * np.inf)


def experiment_rows(
    experiment: str, system: str, v0: float, summary: pd.DataFrame, thresholds: dict[str, float],
    diagnostics: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    rows = []
    with_exact = [q for q in summary.quantity.unique() if not np.isnan(_value(summary, q, "exact")[0])]
    quantities = ["S_tot"] + [q for q in with_exact if q != "S_tot"]
    for quantity in quantities:
        learned, learned_se = _value(summary, quantity, "learned")
        reference, reference_se = _value(summary, quantity, "score_free")
        exact, _ = _value(summary, quantity, "exact")
        if not np.isnan(exact):
            truth, z = "exact", _z(learned - exact, learned_se)
            target = exact
        elif not np.isnan(reference):
            diff, diff_se = _value(summary, quantity, "learned_minus_score_free")
            truth, z, target = "score_free", _z(diff, diff_se), reference
        else:
            continue
        deviation = learned - target
        rel = deviation / abs(target) if target != 0 else float("nan")
        tolerance = max(thresholds["rel_tolerance"] * abs(target), thresholds["abs_tolerance"])
        if quantity == "E_div_v":
            parts = abs(_value(summary, "E_div_x_v_x", "learned")[0]) + abs(_value(summary, "E_div_g_v_g", "learned")[0])
            if np.isfinite(parts):
                tolerance = max(thresholds["invariant_tolerance"] * parts, thresholds["abs_tolerance"])
        off = bool(abs(z) > thresholds["z_threshold"] and abs(deviation) > tolerance)
        baseline, baseline_se = _value(summary, quantity, "linear_features")
        rows.append(dict(
            experiment=experiment, system=system, v0=v0, quantity=quantity, learned=learned,
            learned_se=learned_se, reference=reference, reference_se=reference_se, exact=exact,
            truth=truth, rel_error=rel, z=z, off=off, linear_features=baseline, linear_features_se=baseline_se,
            implied_score_mse=_value(summary, quantity, "implied_score_mse")[0],
        ))
    why = [f"{r['quantity']} off" for r in rows if r["off"]]
    if diagnostics is not None and "off" in diagnostics:
        why += [f"{r.invariant} off" for r in diagnostics.itertuples() if r.off]
    for row in rows:
        row.update(trusted=not why, why="; ".join(why))
    return rows


MIPS_COLUMNS = {"S_tot_learned", "S_tot_learned_stderr", "S_tot_score_free", "S_tot_score_free_stderr",
                "S_tot_rel_error", "S_tot_z", "S_tot_off", "trusted", "why", "v0"}
LATTICE_COLUMNS = MIPS_COLUMNS | {"S_tot_exact"}


def athermal_rows(experiment: str, phases: pd.DataFrame, system: str = "mips") -> list[dict[str, Any]]:
    """The S_tot row (per particle) of one MIPS system from its `by_phase` table, or of one side of the
    active solid (`system` "lattice") from its `epr.csv`, whose truth is the closed form `S_tot_exact`."""
    r = phases.iloc[0]
    why = r["why"] if isinstance(r["why"], str) else ""
    exact = float(r["S_tot_exact"]) if "S_tot_exact" in r else np.nan
    return [dict(experiment=experiment, system=system, v0=float(r["v0"]), quantity="S_tot", learned=r["S_tot_learned"],
                 learned_se=r["S_tot_learned_stderr"], reference=r["S_tot_score_free"],
                 reference_se=r["S_tot_score_free_stderr"], exact=exact,
                 truth="score_free" if np.isnan(exact) else "exact",
                 rel_error=r["S_tot_rel_error"], z=r["S_tot_z"], off=bool(r["S_tot_off"]), linear_features=np.nan,
                 linear_features_se=np.nan, implied_score_mse=np.nan, trusted=bool(r["trusted"]), why=why)]


def accuracy_table(
    summaries: dict[str, pd.DataFrame], meta: dict[str, dict[str, Any]], thresholds: dict[str, float],
    diagnostics: dict[str, pd.DataFrame] | None = None, mips: dict[str, pd.DataFrame] | None = None,
    lattice: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    rows = []
    for name, summary in summaries.items():
        rows += experiment_rows(name, meta[name]["system"], float(meta[name]["v0"]), summary, thresholds,
                                (diagnostics or {}).get(name))
    for name, phases in (mips or {}).items():
        rows += athermal_rows(name, phases)
    for name, table in (lattice or {}).items():
        rows += athermal_rows(name, table, "lattice")
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["system", "v0", "quantity"], kind="stable")


def verdict(summary: pd.DataFrame, diagnostics: pd.DataFrame, thresholds: dict[str, float]) -> tuple[bool, str]:
    """(trusted, why not) of one experiment from its epr_summary and diagnostics tables."""
    rows = experiment_rows("", "", 0.0, summary, thresholds, diagnostics)
    if not rows:
        return True, ""
    return bool(rows[0]["trusted"]), rows[0]["why"]
