"""Stage `train_score`: fit the score of an AOUP system with the composite loss (25)."""

import logging
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from activeflow import io
from activeflow.models.registry import build_model, model_spec
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
) -> None:
    """The checkpoint is removed once the model is saved; after a kill or a
    divergence it stays, and the next run with the same inputs resumes from it."""
    ds = io.read_netcdf(samples_path, required=("x", "g"))
    spec = model_spec(system_kind, parameters, network)
    model = build_model(spec, derive_key(seed, experiment, "train", "init"))
    io.check_samples(ds, samples_path, system_kind, parameters, (model.system.n_particles, model.system.dim))
    x = jnp.asarray(ds.x.values, jnp.float32)
    g = jnp.asarray(ds.g.values, jnp.float32)
    log.info("training on %d samples from %s; %d steps", x.shape[0], samples_path, training["steps"])
    key = derive_key(seed, experiment, "train", "data")
    model, history = fit(model, x, g, training, dt, key, integrator, checkpoint_path=checkpoint_path)
    io.write_csv(history, csv_path)
    io.save_model(model, spec, model_path, spec_path)
    log.info("wrote %s, %s and %s", model_path, spec_path, csv_path)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
