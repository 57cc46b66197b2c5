"""Stage `train_denoising`: fit s_g of the local transformer to the snapshots of MIPS (the paper's denoising
loss (88), or score matching in g) or of the active solid (`lattice`)."""

import logging
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from activeflow import io
from activeflow.models.imbalance import ImbalanceScore
from activeflow.models.registry import build_model, model_spec
from activeflow.numerics.athermal import athermal_system, snapshot_forces
from activeflow.seeding import derive_key
from activeflow.training.denoising import fit_denoising

log = logging.getLogger(__name__)


def run(parameters: dict[str, Any], network: dict[str, Any], training: dict[str, Any], seed: int,
        samples_path: str, model_path: str, spec_path: str, csv_path: str,
        checkpoint_path: str | None = None, force_tolerance: float = 1e-6, system: str = "mips") -> None:
    """The checkpoint is removed once the model is saved; after a kill it stays, and the next run resumes.
    `force_tolerance` is the simulation's cut-off of the pair force (a score fed the force imbalance)."""
    ds = io.read_netcdf(samples_path, required=("x", "g"))
    physical = athermal_system(system, parameters, force_tolerance)
    n = physical.n_particles
    io.check_samples(ds, samples_path, system, parameters, (n, 2))
    box = float(ds.attrs["box"])
    spec = model_spec(system, parameters, network)
    model = build_model(spec, derive_key(seed, system, "train", "init"))
    x = jnp.asarray(ds.x.values, jnp.float32)
    g = jnp.asarray(ds.g.values, jnp.float32)
    force = snapshot_forces(physical, ds.x.values) if isinstance(model, ImbalanceScore) else None
    objective = training.get("objective", "denoising")
    log.info("%s on %d snapshots of N = %d from %s: %d steps of %d particles%s", objective, x.shape[0], n,
             samples_path, training["steps"], training["batch_size"],
             f", sigma = {training['sigma']:g}" if objective == "denoising" else " (exact divergence in g)")
    model, history = fit_denoising(
        model, x, g, box, sigma=float(training["sigma"]), steps=int(training["steps"]),
        batch_size=int(training["batch_size"]), learning_rate=float(training["learning_rate"]),
        warmup_steps=int(training["warmup_steps"]), key=derive_key(seed, system, "train", "data"),
        ema_decay=float(training["ema_decay"]), optimizer=training["optimizer"],
        clip_norm=float(training["clip_norm"]), log_every=int(training["log_every"]),
        augment=bool(training["augment"]), antithetic=bool(training["antithetic"]),
        objective=str(objective), force=force, checkpoint_path=checkpoint_path,
        checkpoint_every=int(training["checkpoint_every"]),
    )
    io.write_csv(history, csv_path)
    io.save_model(model, spec, model_path, spec_path)
    log.info("wrote %s, %s and %s", model_path, spec_path, csv_path)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
