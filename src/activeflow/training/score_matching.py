"""Score matching (22) with the FPE residual term (25) on snapshots of an AOUP system.

The `Trainer` takes batches of snapshots in epochs: each epoch a fresh order of the training set, and
from the second epoch on the whole set advanced by a few steps of the dynamics first (online re-stepping,
F.2.3), so the network never sees the same sample twice. Each epoch's data order and re-stepping noise,
and each step's Hutchinson probes, come from `fold_in` of the key with the epoch or step, so that a
resumed run redoes exactly what an uninterrupted one does.
"""

import functools
from pathlib import Path
from typing import Any

import jax
import pandas as pd

from activeflow.models.score_model import ScoreModel
from activeflow.numerics.integrators import INTEGRATORS, advance
from activeflow.physics.systems import AOUPSystem
from activeflow.training.losses import composite_loss
from activeflow.training.trainer import Monitor, Trainer, fingerprint


@functools.lru_cache(maxsize=16)
def score_loss(lambda_sm: float, lambda_fpe: float, divergence: str = "exact", n_probes: int = 1):
    """The composite loss (25) of a batch (x, g, probe key) of snapshots, for the `Trainer` (the same
    function for the same settings, so that its compiled step is reused)."""

    def loss(model: ScoreModel, batch):
        x, g, key = batch
        terms = composite_loss(model, model.system, x, g, lambda_sm, lambda_fpe, divergence, key, n_probes)
        return terms.total, terms

    return loss


def epoch_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(order key, re-stepping key); epoch e uses fold_in(·, e) of each, so any epoch can be redone."""
    kperm, kstep = jax.random.split(key)
    return kperm, kstep


def probe_key(key: jax.Array, step: int) -> jax.Array:
    """Hutchinson probes of `step` (stochastic divergence): derived from the step, so a resumed run
    draws the same ones; fold_in(key, 1) is a stream apart from the two keys of `epoch_keys`."""
    return jax.random.fold_in(jax.random.fold_in(key, 1), step)


def data_order(kperm: jax.Array, epoch: int, n: int) -> jax.Array:
    """The permutation of the n training samples used in `epoch`."""
    return jax.random.permutation(jax.random.fold_in(kperm, epoch), n)


class EpochBatches:
    """Batches of `batch_size` snapshots in epochs over (x, g), re-stepped by `resample_steps` steps of
    `system` before every epoch but the first. The re-stepped set is the state a checkpoint keeps."""

    def __init__(self, system: AOUPSystem, x: jax.Array, g: jax.Array, batch_size: int, dt: float,
                 integrator: str, resample_steps: int, key: jax.Array):
        n = x.shape[0]
        if batch_size > n:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {n} training samples")
        self.system, self.batch_size, self.dt, self.integrator = system, batch_size, dt, integrator
        self.resample_steps, self.key = resample_steps, key
        self.kperm, self.kstep = epoch_keys(key)
        self.per_epoch = n // batch_size
        self.state = dict(x=x, g=g)
        self._epoch, self._order = None, None

    def batch(self, state: dict[str, jax.Array], step: int):
        epoch, epoch_step = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            if epoch_step == 0 and epoch > 0 and self.resample_steps > 0:
                x, g = advance(self.system, jax.random.fold_in(self.kstep, epoch), state["x"], state["g"], self.dt,
                               self.resample_steps, self.integrator)
                state = dict(x=x, g=g)
            self._epoch, self._order = epoch, data_order(self.kperm, epoch, state["x"].shape[0])
        index = self._order[epoch_step * self.batch_size : (epoch_step + 1) * self.batch_size]
        return state, (state["x"][index], state["g"][index], probe_key(self.key, step))


def fit(
    model: ScoreModel,
    x: jax.Array,
    g: jax.Array,
    training: dict[str, Any],
    dt: float,
    key: jax.Array,
    integrator: str = INTEGRATORS[0],
    checkpoint_path: str | Path | None = None,
    monitor: Monitor | None = None,
) -> tuple[ScoreModel, pd.DataFrame]:
    """Train and return the EMA model and the training log (one row per `log_every` steps).

    With `checkpoint_path`, resume from it when it belongs to these inputs and write it every
    `training.checkpoint_every` steps (the caller removes it once the results are saved)."""
    batches = EpochBatches(model.system, x, g, int(training["batch_size"]), dt, integrator,
                           int(training["resample_steps"]), key)
    loss = score_loss(float(training["lambda_sm"]), float(training["lambda_fpe"]),
                      training.get("divergence", "exact"), int(training.get("n_probes", 1)))
    settings = dict(training, dt=float(dt), integrator=integrator)
    digest = fingerprint(model, settings, key, [x, g]) if checkpoint_path is not None else ""
    trainer = Trainer(loss, training, checkpoint_path=checkpoint_path, fingerprint=digest, monitor=monitor)
    return trainer.fit(model, batches)
