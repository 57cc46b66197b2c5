"""Stage `compute_epr`: per-particle score, velocity, exact divergences and EPR on the held-out
snapshots, and the global Ṡ_tot with its references (`analysis.epr`)."""

import logging

import numpy as np

from activeflow import io
from activeflow.io import cf
from activeflow.analysis.epr import add_score_free, epr_dataset, epr_total_of, summary
from activeflow.models.features import default_features, fit_linear_features

log = logging.getLogger(__name__)


def run(
    model_path: str, spec_path: str, samples_path: str, epr_path: str, summary_path: str, expected: dict | None = None,
    training_path: str | None = None,
) -> None:
    """`expected` (the config's system, parameters, network) guards against a stale model. With the
    training snapshots (`training_path`), the zero-training baseline is fitted on them: the model's prior
    if it has one, else the system's `default_features`."""
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    log.info("evaluating v and its divergences on %d held-out snapshots", samples.sizes["sample"])
    ds = add_score_free(epr_dataset(model, model.system, samples.x.values, samples.g.values), model.system)
    replica = samples.replica.values if "replica" in samples else None
    if replica is not None:  # kept for the standard errors of later stages (diagnose)
        ds = ds.assign(replica=("sample", replica, cf.attrs("index of the independent replica", cf.ONE)))
    baseline = None
    if training_path is not None:
        baseline = linear_feature_baseline(model, training_path, spec, samples)
    table = summary(ds, model.system, replica, baseline)
    info = dict(stage="compute_epr", model=str(model_path), samples=str(samples_path), spec=spec)
    io.write_netcdf(ds, epr_path, info)
    io.write_csv(table, summary_path)
    for row in table[table.quantity == "S_tot"].itertuples():
        log.info("Ṡ_tot %-25s %.6g ± %.2g (s.e.)", row.estimator, row.mean, row.stderr)


def linear_feature_baseline(model, training_path: str, spec: dict, held) -> np.ndarray:
    """Per held-out snapshot Ṡ_tot of the closed-form linear-feature score fitted on the training set."""
    train = io.read_netcdf(training_path, required=("x", "g"))
    system = model.system
    io.check_samples(train, training_path, spec["system"], spec["parameters"], (system.n_particles, system.dim))
    if getattr(model, "prior", None) is not None:
        prior = model.prior  # fitted on the same snapshots with the same features
    else:
        replica = train.replica.values if "replica" in train else None
        prior, report = fit_linear_features(default_features(system), train.x.values, train.g.values, replica)
        log.info("baseline: %d linear features fitted in closed form (ridge %g)", report["n_features"], report["ridge"])
    return epr_total_of(prior, system, held.x.values, held.g.values)
