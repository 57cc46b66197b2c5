"""Stage `train_score`: fit the score of an AOUP system with the composite loss (25); before training,
the closed-form prior if the network has one; while training, the convergence table."""

import logging
import time
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from activeflow import io
from activeflow.analysis.convergence import ConvergenceMonitor, monitor_subset
from activeflow.models.registry import build_model, fit_prior, model_spec
from activeflow.seeding import derive_key
from activeflow.training.score_matching import fit

log = logging.getLogger(__name__)


def run(
    system_kind: str,
    parameters: dict[str, Any],
    network: dict[str, Any],
    training: dict[str, Any],
    dt: float,
    integrator: str,
    seed: int,
    experiment: str,
    samples_path: str,
    model_path: str,
    spec_path: str,
    csv_path: str,
    checkpoint_path: str | None = None,
    heldout_path: str | None = None,
    convergence_path: str | None = None,
) -> None:
    """The checkpoint is removed once the model is saved; after a kill or a divergence it stays, and the
    next run with the same inputs resumes from it. With `heldout_path` and `convergence_path`, the learned
    Ṡ_tot and the score-matching identities on `training.monitor_snapshots` held-out snapshots are
    written there at every logging step."""
    ds = io.read_netcdf(samples_path, required=("x", "g"))
    spec = model_spec(system_kind, parameters, network)
    model = build_model(spec, derive_key(seed, experiment, "train", "init"))
    io.check_samples(ds, samples_path, system_kind, parameters, (model.system.n_particles, model.system.dim))
    x = jnp.asarray(ds.x.values, jnp.float32)
    g = jnp.asarray(ds.g.values, jnp.float32)
    if model.prior is not None:
        start = time.perf_counter()
        replica = ds.replica.values if "replica" in ds else None
        model, report = fit_prior(model, ds.x.values.astype(np.float32), ds.g.values.astype(np.float32), replica)
        log.info("prior: %d linear features fitted in closed form on %d snapshots (ridge %g by cross-validation "
                 "over replicas) in %.1f s", report["n_features"], report["n_snapshots"], report["ridge"],
                 time.perf_counter() - start)
    monitor = None
    if convergence_path is not None:
        held = io.read_netcdf(heldout_path, required=("x", "g", "replica"))
        io.check_samples(held, heldout_path, system_kind, parameters, (model.system.n_particles, model.system.dim))
        which = monitor_subset(held.replica.values, int(training["monitor_snapshots"]))
        monitor = ConvergenceMonitor(model.system, held.x.values[which], held.g.values[which],
                                     held.replica.values[which])
        log.info("convergence: Ṡ_tot and the identities on %d held-out snapshots of %d replicas at every logging step",
                 len(which), len(np.unique(held.replica.values[which])))
    log.info("training on %d samples from %s; %d steps", x.shape[0], samples_path, training["steps"])
    key = derive_key(seed, experiment, "train", "data")
    model, history = fit(model, x, g, training, dt, key, integrator, checkpoint_path=checkpoint_path, monitor=monitor)
    io.write_csv(history, csv_path)
    if monitor is not None:
        io.write_csv(monitor.table(), convergence_path)
    io.save_model(model, spec, model_path, spec_path)
    log.info("wrote %s, %s and %s", model_path, spec_path, csv_path)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
