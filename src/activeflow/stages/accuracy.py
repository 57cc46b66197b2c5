"""Stage `accuracy`: one table comparing every learned Ṡ_tot with its reference (`analysis.accuracy`)."""

import logging
from typing import Any

import pandas as pd

from activeflow import io
from activeflow.analysis.accuracy import LATTICE_COLUMNS, MIPS_COLUMNS, accuracy_table
from activeflow.errors import InputFileError

log = logging.getLogger(__name__)


def read_table(path: str, columns: set[str], what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputFileError(f"{path}: unreadable {what} table ({err})") from None
    missing = columns - set(table.columns)
    if missing:
        raise InputFileError(f"{path}: not a {what} table (missing columns {sorted(missing)})")
    return table


def run(summary_paths: dict[str, str], meta: dict[str, dict[str, Any]], thresholds: dict[str, float], out_path: str,
        diagnostics_paths: dict[str, str] | None = None, mips_paths: dict[str, str] | None = None,
        lattice_paths: dict[str, str] | None = None) -> None:
    """`mips_paths`: the epr_by_phase.csv of each MIPS system, named as its rows of the table;
    `lattice_paths`: the epr.csv of each evaluated side of the active solid, likewise."""
    summaries = {name: read_table(path, {"quantity", "estimator", "mean", "stderr"}, "epr_summary")
                 for name, path in summary_paths.items()}
    diagnostics = {name: read_table(path, {"invariant", "mean", "stderr", "off"}, "diagnostics")
                   for name, path in (diagnostics_paths or {}).items()}
    mips = {name: read_table(path, MIPS_COLUMNS, "MIPS epr_by_phase") for name, path in (mips_paths or {}).items()}
    lattice = {name: read_table(path, LATTICE_COLUMNS, "active-solid epr") for name, path in (lattice_paths or {}).items()}
    table = accuracy_table(summaries, meta, thresholds, diagnostics, mips, lattice)
    io.write_csv(table, out_path)
    for row in table[table.quantity == "S_tot"].itertuples():
        log.info(
            "%-22s Ṡ_tot learned %.5g ± %.2g vs %s %.5g: rel %+.2e, z %+.2f%s", row.experiment, row.learned,
            row.learned_se, row.truth, row.exact if row.truth == "exact" else row.reference, row.rel_error,
            row.z, "  OFF" if row.off else "",
        )
    for name, rows in table.groupby("experiment", sort=False):
        if not rows.trusted.iloc[0]:
            log.warning("%s is NOT TRUSTED (%s): its figures are marked; see accuracy.csv", name, rows.why.iloc[0])
