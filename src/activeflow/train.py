"""Stage `train_score`: fit the score with the composite loss (25) using Optax.

Adam or RAdam on a warmup-cosine schedule with global-norm clipping; an exponential moving average
(EMA) of the weights is what gets saved. Between epochs the whole dataset is advanced by a few
Euler–Maruyama steps (online re-stepping, F.2.3), so the network never sees the same sample twice.

Restartable: every `checkpoint_every` steps the whole training state (weights, optimiser state, EMA,
step, PRNG key, and the current re-stepped dataset) is written atomically to a checkpoint file, which a
later run with the same inputs resumes from. Each epoch's data order and re-stepping noise come from
`fold_in(key, epoch)`, so a resumed run is bitwise identical to an uninterrupted one.
"""

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from activeflow import checkpoint, io
from activeflow.errors import InputFileError, TrainingDiverged
from activeflow.losses import LossTerms, composite_loss
from activeflow.networks import ScoreModel, make_network, network_hyperparameters
from activeflow.seeding import derive_key
from activeflow.simulate import INTEGRATORS, advance
from activeflow.systems import make_system

log = logging.getLogger(__name__)


def model_spec(system_kind: str, parameters: dict[str, Any], network: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rebuild the model skeleton (written as model.json)."""
    system = make_system(system_kind, parameters)
    return dict(
        system=system_kind,
        parameters=parameters,
        network=network,
        hyperparameters=network_hyperparameters(system, network),
    )


def build_model(spec: dict[str, Any], key: jax.Array | None) -> eqx.Module:
    """The model described by a model.json spec: skeleton (key None) or fresh weights."""
    if spec["system"] == "mips":  # the local transformer of s_g only (denoising.py)
        from activeflow.denoising import build_local_model

        return build_local_model(spec, key)
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


def make_train_step(
    optimizer: optax.GradientTransformation,
    lambda_sm: float,
    lambda_fpe: float,
    ema_decay: float,
    divergence: str = "exact",
    n_probes: int = 1,
):
    @eqx.filter_jit
    def train_step(model: ScoreModel, opt_state, ema, step, x, g, index, probe_key):
        xb, gb = x[index], g[index]

        def loss_fn(m: ScoreModel) -> tuple[jax.Array, LossTerms]:
            terms = composite_loss(m, m.system, xb, gb, lambda_sm, lambda_fpe, divergence, probe_key, n_probes)
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


# Keys of the training block that do not change the trained numbers (a checkpoint survives edits to them).
BOOKKEEPING_KEYS = ("log_every", "checkpoint_every")


def check_finite(step: int, terms: LossTerms, grad_norm: float, kept: str) -> None:
    """`step` counts from 1 as in training.csv; `kept` says what the user still has."""
    for name, value in terms._asdict().items():
        if not np.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged at step {step}: loss term {name!r} is {float(value)}; {kept}")
    if not np.isfinite(grad_norm):
        raise TrainingDiverged(f"training diverged at step {step}: gradient norm is {grad_norm}; {kept}")


def fingerprint(
    model: ScoreModel, training: dict[str, Any], dt: float, integrator: str, key: jax.Array, x: jax.Array, g: jax.Array
) -> str:
    """SHA-256 of everything that determines the trained bits: the model's structure (with the system's
    parameters) and initial weights, the training settings, Δt and the re-stepping integrator, the PRNG
    key and the training data."""
    h = hashlib.sha256()
    settings = {k: v for k, v in training.items() if k not in BOOKKEEPING_KEYS}
    h.update(json.dumps(dict(training=settings, dt=float(dt), integrator=integrator), sort_keys=True, default=str).encode())
    h.update(str(jax.tree.structure(model)).encode())
    arrays = [*jax.tree.leaves(eqx.filter(model, eqx.is_array)), jax.random.key_data(key), x, g]
    for a in arrays:
        a = np.asarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


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


def resume_checkpoint(path: Path, digest: str, skeleton: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The checkpoint's header and state if it belongs to this run; otherwise None, with a logged reason."""
    if not path.exists():
        return None
    try:
        header = checkpoint.read_header(path)
        if header.get("fingerprint") != digest:
            log.warning(
                "ignoring checkpoint %s: it was written for other training inputs (model, training settings, "
                "dt, seed or data differ); starting from step 0 and overwriting it", path,
            )
            return None
        return checkpoint.load(path, skeleton)
    except InputFileError as err:
        log.warning("ignoring checkpoint: %s; starting from step 0", err)
        return None


def fit(
    model: ScoreModel,
    x: jax.Array,
    g: jax.Array,
    training: dict[str, Any],
    dt: float,
    key: jax.Array,
    integrator: str = INTEGRATORS[0],
    checkpoint_path: str | Path | None = None,
) -> tuple[ScoreModel, pd.DataFrame]:
    """Train and return the EMA model and the training log (one row per `log_every` steps).

    With `checkpoint_path`, resume from it when it belongs to these inputs and write it every
    `training.checkpoint_every` steps (the caller removes it once the results are saved)."""
    n = x.shape[0]
    batch = int(training["batch_size"])
    if batch > n:
        raise ValueError(f"training.batch_size={batch} exceeds the {n} training samples")
    steps, log_every = int(training["steps"]), int(training["log_every"])
    every = int(training.get("checkpoint_every", steps))
    resample_steps = int(training["resample_steps"])
    optimizer, schedule = make_optimizer(training)
    train_step = make_train_step(
        optimizer, float(training["lambda_sm"]), float(training["lambda_fpe"]), float(training["ema_decay"]),
        training.get("divergence", "exact"), int(training.get("n_probes", 1)),
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    state = dict(model=model, opt_state=optimizer.init(params), ema=params, x=x, g=g, key=jax.random.key_data(key))
    start_step, rows, elapsed_before = 0, [], 0.0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    digest = fingerprint(model, training, dt, integrator, key, x, g) if path is not None else ""
    kept = "no checkpoint is kept (none configured); no model is written"
    if path is not None:
        kept = "no checkpoint was written before it; no model is written"
        resumed = resume_checkpoint(path, digest, state)
        if resumed is not None:
            header, state = resumed
            start_step, rows, elapsed_before = header["step"], header["history"], header["seconds"]
            kept = f"the last good checkpoint (step {start_step}) is kept in {path}; no model is written"
            log.info("resuming from checkpoint %s at step %d of %d", path, start_step, steps)
    model, opt_state, ema, x, g = (state[k] for k in ("model", "opt_state", "ema", "x", "g"))
    base_key = jax.random.wrap_key_data(jnp.asarray(state["key"]))
    kperm, kstep = epoch_keys(base_key)
    per_epoch = n // batch
    start, order = time.perf_counter(), None
    for step in range(start_step, steps):
        epoch, epoch_step = divmod(step, per_epoch)
        if epoch_step == 0 or order is None:
            if epoch_step == 0 and epoch > 0 and resample_steps > 0:
                x, g = advance(model.system, jax.random.fold_in(kstep, epoch), x, g, dt, resample_steps, integrator)
            order = data_order(kperm, epoch, n)
        index = order[epoch_step * batch : (epoch_step + 1) * batch]
        model, opt_state, ema, terms, grad_norm = train_step(
            model, opt_state, ema, jnp.asarray(step, jnp.float32), x, g, index, probe_key(base_key, step)
        )
        check_finite(step + 1, terms, float(grad_norm), kept)
        done = step + 1
        if done % log_every == 0 or done == steps:
            session = time.perf_counter() - start
            rate = (done - start_step) / session
            row = dict(
                step=done, loss=float(terms.total), score_matching=float(terms.score_matching),
                fpe_residual=float(terms.fpe_residual), learning_rate=float(schedule(step)),
                grad_norm=float(grad_norm), seconds=elapsed_before + session,
            )
            rows.append(row)
            log.info(
                "step %d/%d loss %.5g (sm %.5g, fpe %.5g) lr %.3g | %.1f steps/s, %.0f s left",
                done, steps, row["loss"], row["score_matching"], row["fpe_residual"],
                row["learning_rate"], rate, (steps - done) / rate,
            )
        if path is not None and done % every == 0 and done < steps:
            header = dict(fingerprint=digest, step=done, history=rows, seconds=elapsed_before + time.perf_counter() - start)
            tree = dict(model=model, opt_state=opt_state, ema=ema, x=x, g=g, key=state["key"])
            checkpoint.save(path, header, tree)
            kept = f"the last good checkpoint (step {done}) is kept in {path}; no model is written"
            log.info("checkpoint at step %d written to %s", done, path)
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
    checkpoint_path: str | None = None,
) -> None:
    """Stage `train_score`. The checkpoint is removed once the model is saved; after a kill or a
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
