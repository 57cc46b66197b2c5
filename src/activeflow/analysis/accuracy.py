"""Stage `accuracy`: one table comparing every learned Ṡ_tot with a reference it can be checked against.

The truth is the closed form where the system has one (linear), else the score-free estimate (see
`reference`). z is the deviation in standard errors: (learned − exact)/s.e.(learned), or, against the
score-free estimate, the mean paired difference over the same snapshots divided by its standard error.
A value is flagged `off` when it is both statistically (|z| > z_threshold) and practically
(|learned − truth| > max(rel_tolerance·|truth|, abs_tolerance)) distinguishable from the truth.
"""

from typing import Any

import numpy as np
import pandas as pd

COLUMNS = [
    "experiment", "system", "v0", "quantity", "learned", "learned_se", "reference", "reference_se",
    "exact", "truth", "rel_error", "z", "off",
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
    experiment: str, system: str, v0: float, summary: pd.DataFrame, thresholds: dict[str, float]
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
        off = bool(abs(z) > thresholds["z_threshold"] and abs(deviation) > tolerance)
        rows.append(dict(
            experiment=experiment, system=system, v0=v0, quantity=quantity, learned=learned,
            learned_se=learned_se, reference=reference, reference_se=reference_se, exact=exact,
            truth=truth, rel_error=rel, z=z, off=off,
        ))
    return rows


def accuracy_table(
    summaries: dict[str, pd.DataFrame], meta: dict[str, dict[str, Any]], thresholds: dict[str, float]
) -> pd.DataFrame:
    rows = []
    for name, summary in summaries.items():
        rows += experiment_rows(name, meta[name]["system"], float(meta[name]["v0"]), summary, thresholds)
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["system", "v0", "quantity"], kind="stable")
