"""Stage `diagnose`: invariants of the stationary FPE from the fields that `compute_epr` evaluated on
the held-out snapshots, each checked against zero (`analysis.diagnostics`)."""

import logging

from activeflow import io
from activeflow.analysis.diagnostics import REQUIRED, invariants, summary

log = logging.getLogger(__name__)


def run(epr_path: str, nc_path: str, csv_path: str, thresholds: dict[str, float]) -> None:
    """`thresholds`: z_threshold and invariant_tolerance (the config's `accuracy` block)."""
    epr = io.read_netcdf(epr_path, required=REQUIRED)
    log.info("invariants of the stationary FPE on %d held-out snapshots", epr.sizes["sample"])
    ds = invariants(epr)
    table = summary(ds, epr.replica.values if "replica" in epr else None, thresholds)
    io.write_netcdf(ds, nc_path, dict(stage="diagnose", epr=str(epr_path), spec=io.stage_info(epr).get("spec")))
    io.write_csv(table, csv_path)
    for row in table.itertuples():
        log.log(logging.WARNING if row.off else logging.INFO,
                "%-14s μ = %+.4g  σ = %.4g  s.e. = %.2g  (terms of size %.3g)%s", row.invariant, row.mean, row.std,
                row.stderr, row.scale, "  OFF: not zero within its error or the tolerance" if row.off else "")
