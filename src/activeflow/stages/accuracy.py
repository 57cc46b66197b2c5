"""Stage `accuracy`: one table comparing every learned Ṡ_tot with its reference (`analysis.accuracy`)."""

import logging
from typing import Any

import pandas as pd

from activeflow import io
from activeflow.analysis.accuracy import accuracy_table

log = logging.getLogger(__name__)


def run(summary_paths: dict[str, str], meta: dict[str, dict[str, Any]], thresholds: dict[str, float], out_path: str) -> None:
    summaries = {}
    for name, path in summary_paths.items():
        table = pd.read_csv(path)
        missing = {"quantity", "estimator", "mean", "stderr"} - set(table.columns)
        if missing:
            raise ValueError(f"{path}: not an epr_summary table (missing columns {sorted(missing)})")
        summaries[name] = table
    table = accuracy_table(summaries, meta, thresholds)
    io.write_csv(table, out_path)
    for row in table[table.quantity == "S_tot"].itertuples():
        log.info(
            "%-22s Ṡ_tot learned %.5g ± %.2g vs %s %.5g: rel %+.2e, z %+.2f%s", row.experiment, row.learned,
            row.learned_se, row.truth, row.exact if row.truth == "exact" else row.reference, row.rel_error,
            row.z, "  OFF" if row.off else "",
        )
