"""Stage `diagnose`: invariants of the stationary FPE from the fields that `compute_epr` evaluated on
the held-out snapshots (`analysis.diagnostics`)."""

import logging

from activeflow import io
from activeflow.analysis.diagnostics import REQUIRED, invariants, summary

log = logging.getLogger(__name__)


def run(epr_path: str, nc_path: str, csv_path: str) -> None:
    epr = io.read_netcdf(epr_path, required=REQUIRED)
    log.info("invariants of the stationary FPE on %d held-out snapshots", epr.sizes["sample"])
    ds = invariants(epr)
    table = summary(ds, epr.replica.values if "replica" in epr else None)
    io.write_netcdf(ds, nc_path, dict(stage="diagnose", epr=str(epr_path), spec=io.stage_info(epr).get("spec")))
    io.write_csv(table, csv_path)
    for row in table.itertuples():
        log.info("%-14s μ = %+.4g  σ = %.4g  s.e. = %.2g", row.invariant, row.mean, row.std, row.stderr)
