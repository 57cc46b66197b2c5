"""Stage `compute_epr`: per-particle score, velocity, exact divergences and EPR on the held-out
snapshots, and the global Ṡ_tot with its references (`analysis.epr`)."""

import logging

from activeflow import io
from activeflow.analysis.epr import add_score_free, epr_dataset, summary

log = logging.getLogger(__name__)


def run(
    model_path: str, spec_path: str, samples_path: str, epr_path: str, summary_path: str, expected: dict | None = None
) -> None:
    """`expected` (the config's system, parameters, network) guards against a stale model."""
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    log.info("evaluating v and its divergences on %d held-out snapshots", samples.sizes["sample"])
    ds = add_score_free(epr_dataset(model, model.system, samples.x.values, samples.g.values), model.system)
    replica = samples.replica.values if "replica" in samples else None
    if replica is not None:  # kept for the standard errors of later stages (diagnose)
        ds = ds.assign(replica=("sample", replica, {"long_name": "index of the independent replica"}))
    table = summary(ds, model.system, replica)
    info = dict(stage="compute_epr", model=str(model_path), samples=str(samples_path), spec=spec)
    io.write_netcdf(ds, epr_path, info)
    io.write_csv(table, summary_path)
    for row in table[table.quantity == "S_tot"].itertuples():
        log.info("Ṡ_tot %-25s %.6g ± %.2g (s.e.)", row.estimator, row.mean, row.stderr)
