"""Convergence of a score while it trains: at every logging step, the learned Ṡ_tot and the two
score-matching identities on a fixed small held-out subset, with standard errors, next to the
score-free Ṡ_tot of the same snapshots (`results/{experiment}/convergence.csv`).

The subset takes snapshots round-robin over the held-out replicas (the first of each replica, then the
second, ...), and standard errors come from replica means, as in `compute_epr`. Evaluation is as in `compute_epr` (exact
per-particle divergences, full precision), on the EMA weights the run would save at that step.
"""

from typing import Any

import numpy as np
import pandas as pd

from activeflow.analysis.diagnostics import invariants
from activeflow.analysis.epr import add_score_free, epr_dataset
from activeflow.analysis.stats import mean_stderr
from activeflow.physics.systems import AOUPSystem

# (quantity, meaning) of the rows, in order
QUANTITIES = {
    "S_tot": "learned Ṡ_tot = E Σ_i |v^i|²_{D⁻¹}",
    "S_tot_score_free": "score-free Ṡ_tot (v0/D_x) E[g·b_x] of the same snapshots",
    "S_tot_gap": "learned minus score-free Ṡ_tot, paired",
    "sm_identity_x": "E[|s_x|² + ∇_x·s_x] per particle (0 at the exact score)",
    "sm_identity_g": "E[|s_g|² + ∇_g·s_g] per particle (0 at the exact score)",
}


def monitor_subset(replica: np.ndarray, n_snapshots: int) -> np.ndarray:
    """Indices of `n_snapshots` snapshots taken round-robin over the replicas, in file order."""
    rank = np.zeros(len(replica), int)  # how many earlier snapshots of the same replica there are
    seen: dict[int, int] = {}
    for s, r in enumerate(replica):
        rank[s], seen[r] = seen.get(r, 0), seen.get(r, 0) + 1
    order = np.lexsort((np.arange(len(replica)), rank))
    return np.sort(order[:n_snapshots])


def convergence_rows(model: Any, system: AOUPSystem, x: np.ndarray, g: np.ndarray, replica: np.ndarray | None,
                     step: int) -> list[dict[str, Any]]:
    """The rows of one step: quantity, value, stderr (see QUANTITIES)."""
    ds = epr_dataset(model, system, x, g)
    learned = ds.epr_total.sum("particle").values
    values = {"S_tot": learned}
    if system.Dx > 0:
        free = add_score_free(ds, system).score_free.values
        values |= {"S_tot_score_free": free, "S_tot_gap": learned - free}
    inv = invariants(ds)
    values |= {name: inv[name].values for name in ("sm_identity_x", "sm_identity_g")}
    rows = []
    for name, v in values.items():
        mean, se = mean_stderr(v, replica)
        rows.append(dict(step=step, quantity=name, value=mean, stderr=se))
    return rows


class ConvergenceMonitor:
    """A `Trainer` monitor: `convergence_rows` on the snapshots x, g at every logging step."""

    def __init__(self, system: AOUPSystem, x: np.ndarray, g: np.ndarray, replica: np.ndarray | None = None):
        self.system, self.x, self.g, self.replica = system, x, g, replica
        self.rows: list[dict[str, Any]] = []

    def __call__(self, model: Any, step: int) -> None:
        self.rows += convergence_rows(model, self.system, self.x, self.g, self.replica, step)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["step", "quantity", "value", "stderr"])
