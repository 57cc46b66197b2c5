"""Stage `train_score`: fit the score with the composite loss (25) using Optax.

Adam or RAdam on a warmup-cosine schedule with global-norm clipping; an exponential moving average
(EMA) of the weights is what gets saved. Between epochs the whole dataset is advanced by a few
Euler–Maruyama steps (online re-stepping, F.2.3), so the network never sees the same sample twice.
"""

import logging
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from activeflow import io
from activeflow.losses import LossTerms, composite_loss
from activeflow.networks import ScoreModel, make_network, network_hyperparameters
from activeflow.seeding import derive_key
from activeflow.simulate import INTEGRATORS, advance
from activeflow.systems import make_system

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss or gradient became non-finite."""


def model_spec(system_kind: str, parameters: dict[str, Any], network: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rebuild the model skeleton (written as model.json)."""
    system = make_system(system_kind, parameters)
    return dict(
        system=system_kind,
        parameters=parameters,
        network=network,
        hyperparameters=network_hyperparameters(system, network),
    )


def build_model(spec: dict[str, Any], key: jax.Array | None) -> ScoreModel:
    system = make_system(spec["system"], spec["parameters"])
    key = jax.random.key(0) if key is None else key
    net = make_network(spec["network"]["kind"], spec["hyperparameters"], key=key)
    return ScoreModel(net, system, shift=bool(spec["network"].get("boltzmann_shift", False)))


def make_optimizer(training: dict[str, Any]) -> tuple[optax.GradientTransformation, optax.Schedule]:
    steps, warmup, peak = int(training["steps"]), int(training["warmup_steps"]), float(training["learning_rate"])
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup > 0 else peak, peak_value=peak, warmup_steps=warmup,
        decay_steps=max(steps, warmup + 1), end_value=0.0,
    )
    optimisers = {"adam": optax.adam, "radam": optax.radam}
    name = training["optimizer"]
    if name not in optimisers:
        raise ValueError(f"training.optimizer={name!r}; allowed: {sorted(optimisers)}")
    chain = optax.chain(optax.clip_by_global_norm(float(training["clip_norm"])), optimisers[name](schedule))
    return chain, schedule


def make_train_step(optimizer: optax.GradientTransformation, lambda_sm: float, lambda_fpe: float, ema_decay: float):
    @eqx.filter_jit
    def train_step(model: ScoreModel, opt_state, ema, step, x, g, index):
        xb, gb = x[index], g[index]

        def loss_fn(m: ScoreModel) -> tuple[jax.Array, LossTerms]:
            terms = composite_loss(m, m.system, xb, gb, lambda_sm, lambda_fpe)
            return terms.total, terms

        (_, terms), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        # EMA with the usual warm start, so early averages are not dominated by the initial weights.
        decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
        ema = optax.incremental_update(eqx.filter(model, eqx.is_inexact_array), ema, 1.0 - decay)
        return model, opt_state, ema, terms, optax.tree.norm(grads)

    return train_step


def check_finite(step: int, terms: LossTerms, grad_norm: float) -> None:
    for name, value in terms._asdict().items():
        if not np.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged at step {step}: loss term {name!r} is {float(value)}")
    if not np.isfinite(grad_norm):
        raise TrainingDiverged(f"training diverged at step {step}: gradient norm is {grad_norm}")


def fit(
    model: ScoreModel,
    x: jax.Array,
    g: jax.Array,
    training: dict[str, Any],
    dt: float,
    key: jax.Array,
    integrator: str = INTEGRATORS[0],
) -> tuple[ScoreModel, pd.DataFrame]:
    """Train and return the EMA model and the training log (one row per `log_every` steps)."""
    n = x.shape[0]
    batch = int(training["batch_size"])
    if batch > n:
        raise ValueError(f"training.batch_size={batch} exceeds the {n} training samples")
    steps, log_every = int(training["steps"]), int(training["log_every"])
    resample_steps = int(training["resample_steps"])
    optimizer, schedule = make_optimizer(training)
    train_step = make_train_step(
        optimizer, float(training["lambda_sm"]), float(training["lambda_fpe"]), float(training["ema_decay"])
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    ema = params
    per_epoch = n // batch
    rows, start, order = [], time.perf_counter(), None
    for step in range(steps):
        epoch_step = step % per_epoch
        if epoch_step == 0:
            key, kperm, kstep = jax.random.split(key, 3)
            if step > 0 and resample_steps > 0:
                x, g = advance(model.system, kstep, x, g, dt, resample_steps, integrator)
            order = jax.random.permutation(kperm, n)
        index = order[epoch_step * batch : (epoch_step + 1) * batch]
        model, opt_state, ema, terms, grad_norm = train_step(model, opt_state, ema, jnp.asarray(step, jnp.float32), x, g, index)
        check_finite(step, terms, float(grad_norm))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            elapsed = time.perf_counter() - start
            rate = (step + 1) / elapsed
            row = dict(
                step=step + 1, loss=float(terms.total), score_matching=float(terms.score_matching),
                fpe_residual=float(terms.fpe_residual), learning_rate=float(schedule(step)),
                grad_norm=float(grad_norm), seconds=elapsed,
            )
            rows.append(row)
            log.info(
                "step %d/%d loss %.5g (sm %.5g, fpe %.5g) lr %.3g | %.1f steps/s, %.0f s left",
                step + 1, steps, row["loss"], row["score_matching"], row["fpe_residual"],
                row["learning_rate"], rate, (steps - step - 1) / rate,
            )
    return eqx.combine(ema, model), pd.DataFrame(rows)


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
) -> None:
    ds = io.read_netcdf(samples_path, required=("x", "g"))
    spec = model_spec(system_kind, parameters, network)
    model = build_model(spec, derive_key(seed, experiment, "train", "init"))
    shape = (model.system.n_particles, model.system.dim)
    if ds.x.shape[1:] != shape:
        raise ValueError(f"{samples_path}: samples have (particle, dim) = {ds.x.shape[1:]}, the config's system {shape}")
    x = jnp.asarray(ds.x.values, jnp.float32)
    g = jnp.asarray(ds.g.values, jnp.float32)
    log.info("training on %d samples from %s; %d steps", x.shape[0], samples_path, training["steps"])
    model, history = fit(model, x, g, training, dt, derive_key(seed, experiment, "train", "data"), integrator)
    io.write_csv(history, csv_path)
    io.save_model(model, spec, model_path, spec_path)
    log.info("wrote %s, %s and %s", model_path, spec_path, csv_path)
