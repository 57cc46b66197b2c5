"""One training loop for every score: the optimiser and its schedule (optax), an exponential moving
average (EMA) of the weights, checkpoint and resume, a guard against non-finite values, progress lines,
the history table and, optionally, a monitor evaluated at the logging steps.

What differs between the scores is passed in: a loss `loss(model, batch) -> (total, terms)` (`terms` a
NamedTuple of scalars, `total` among them or not) and a `Batches` source that says how each step's batch
is made and what of it must be checkpointed.

The loop never waits for the device between logging steps: finiteness of every loss term and of the
gradient norm is tracked inside the compiled step (`Health`: the first bad step and its values), and read
only when a line is logged, a checkpoint is about to be written, or training ends. A divergence therefore
stops with the same message as a check at every step (the step, the term, what is kept), and no
checkpoint is ever written after it.

Restartable: every `checkpoint_every` steps the whole state (weights, optimiser state, EMA, the batch
source's state, the history so far) is written atomically; a later fit with the same fingerprint resumes
from it, and each step's randomness depends only on the step, so the result is bitwise the uninterrupted
one. SIGTERM (what SLURM sends at preemption and ahead of the time limit) and SIGINT are caught while
training: the current step finishes, the state is checkpointed at that step, and `Preempted` is raised, so
no work since the last periodic checkpoint is lost.
"""

import functools
import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from activeflow.errors import InputFileError, Preempted, TrainingDiverged
from activeflow.training import checkpoint

log = logging.getLogger(__name__)

OPTIMIZERS = {"adam": optax.adam, "radam": optax.radam}
# Keys of a training block that do not change the trained numbers (a checkpoint survives edits to them).
BOOKKEEPING_KEYS = ("log_every", "checkpoint_every")

Terms = tuple  # a NamedTuple of scalar loss terms (as a hint: its fields vary with the loss)
Loss = Callable[[eqx.Module, Any], tuple[jax.Array, Terms]]


@runtime_checkable
class Monitor(Protocol):
    """Called with the EMA model at every logging step; keeps its table rows in `rows` (a checkpoint
    keeps them, and a resumed run restores them)."""

    rows: list[dict[str, Any]]

    def __call__(self, model: eqx.Module, step: int) -> None: ...


def make_optimizer(training: dict[str, Any]) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Global-norm clipping, then Adam or RAdam on a warmup-cosine schedule decaying to 0 at `steps`."""
    steps, warmup, peak = int(training["steps"]), int(training["warmup_steps"]), float(training["learning_rate"])
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup > 0 else peak, peak_value=peak, warmup_steps=warmup,
        decay_steps=max(steps, warmup + 1), end_value=0.0,
    )
    name = training["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"training.optimizer={name!r}; allowed: {sorted(OPTIMIZERS)}")
    chain = optax.chain(optax.clip_by_global_norm(float(training["clip_norm"])), OPTIMIZERS[name](schedule))
    return chain, schedule


@functools.lru_cache(maxsize=16)
def _cached_optimizer(steps: int, warmup_steps: int, learning_rate: float, optimizer: str, clip_norm: float):
    return make_optimizer(dict(steps=steps, warmup_steps=warmup_steps, learning_rate=learning_rate,
                               optimizer=optimizer, clip_norm=clip_norm))


def optimizer_for(training: dict[str, Any]) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """`make_optimizer`, the same object for the same settings (so `compiled_step` finds its cache)."""
    return _cached_optimizer(int(training["steps"]), int(training["warmup_steps"]),
                             float(training["learning_rate"]), str(training["optimizer"]),
                             float(training["clip_norm"]))


def fingerprint(model: eqx.Module, settings: dict[str, Any], key: jax.Array, arrays: Sequence[Any]) -> str:
    """SHA-256 of everything that determines the trained bits: the model's structure and initial
    weights, the settings that change numbers (`BOOKKEEPING_KEYS` left out), the PRNG key and the data."""
    h = hashlib.sha256()
    kept = {k: v for k, v in settings.items() if k not in BOOKKEEPING_KEYS}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    h.update(str(jax.tree.structure(model)).encode())
    for a in [*jax.tree.leaves(eqx.filter(model, eqx.is_array)), jax.random.key_data(key), *arrays]:
        a = np.asarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@runtime_checkable
class Batches(Protocol):
    """Where a step's batch comes from. `state` is what a checkpoint must hold to redo the rest (e.g. a
    training set that is re-stepped every epoch); `batch(state, step)` returns (state, batch)."""

    state: Any

    def batch(self, state: Any, step: int) -> tuple[Any, Any]: ...


class Health(NamedTuple):
    """On-device record of the first step whose loss terms or gradient norm were not finite (−1: none),
    with those values, and of the first step whose loss reported a `problem` count > 0."""

    bad_step: jax.Array
    bad_terms: Terms
    bad_grad_norm: jax.Array
    problem_step: jax.Array
    problem_count: jax.Array


def initial_health(loss: Loss, model: eqx.Module, batch: Any) -> Health:
    """Nothing bad seen yet, shaped for this loss's terms."""
    terms = _split(eqx.filter_eval_shape(loss, model, batch)[1])[0]
    minus_one = jnp.asarray(-1, jnp.int32)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), terms)
    return Health(minus_one, zeros, jnp.zeros(()), minus_one, jnp.asarray(0, jnp.int32))


def _record(health: Health, step: jax.Array, terms: Terms, grad_norm: jax.Array, problems: jax.Array) -> Health:
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(t)) for t in terms] + [jnp.isfinite(grad_norm)]))
    first_bad = (health.bad_step < 0) & ~finite
    first_problem = (health.problem_step < 0) & (problems > 0)
    pick = lambda new, old, now: jnp.where(now, new, old)  # noqa: E731
    return Health(
        pick(step, health.bad_step, first_bad),
        jax.tree.map(lambda new, old: pick(new, old, first_bad), terms, health.bad_terms),
        pick(grad_norm, health.bad_grad_norm, first_bad),
        pick(step, health.problem_step, first_problem),
        pick(problems.astype(jnp.int32), health.problem_count, first_problem),
    )


@functools.lru_cache(maxsize=16)
def compiled_step(loss: Loss, optimizer: optax.GradientTransformation, ema_decay: float):
    """The jitted training step for this loss, optimiser and EMA decay (cached: repeated fits with the
    same settings, as in a notebook or a test, reuse the compilation). The loss returns (total, terms)
    or (total, (terms, problems)), `problems` an integer count of failures (e.g. incomplete neighbour
    lists) reported by `Trainer.problem`."""

    @eqx.filter_jit
    def step_fn(model, opt_state, ema, step, batch, health):
        (total, aux), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, batch)
        terms, problems = _split(aux)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        # EMA with the usual warm start, so early averages are not dominated by the initial weights.
        decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
        ema = optax.incremental_update(eqx.filter(model, eqx.is_inexact_array), ema, 1.0 - decay)
        grad_norm = optax.tree.norm(grads)
        health = _record(health, step.astype(jnp.int32) + 1, terms, grad_norm, problems)
        return model, opt_state, ema, total, terms, grad_norm, health

    return step_fn


def _split(aux: Any) -> tuple[Terms, Any]:  # Any: a ShapeDtypeStruct under eval_shape
    """(terms, problems) from a loss's auxiliary output: terms alone, or (terms, problems)."""
    if isinstance(aux, tuple) and not hasattr(aux, "_fields"):
        return aux
    return aux, jnp.asarray(0, jnp.int32)


class StopRequests:
    """SIGTERM and SIGINT while inside the block are remembered (`signal`) instead of ending the process;
    the previous handlers come back on exit. Signal handlers can be set from the main thread only: elsewhere
    (a notebook's worker thread) the signals keep their usual effect."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: signal.Signals | None = None
        self._previous: dict[int, Any] = {}

    def _remember(self, signum: int, frame: Any) -> None:
        self.signal = signal.Signals(signum)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._remember) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Trainer:
    """Trains a model on a loss; see the module docstring.

    `settings`: optimizer, learning_rate, warmup_steps, steps, clip_norm, ema_decay, log_every,
    checkpoint_every (optional). `problem(step, count)` builds the exception raised when the
    loss reports problems; `describe` names the steps in the log ("step", "denoising step"); `monitor`
    (see `Monitor`) is called at every logging step."""

    def __init__(
        self,
        loss: Loss,
        settings: dict[str, Any],
        *,
        checkpoint_path: str | Path | None = None,
        fingerprint: str = "",
        describe: str = "step",
        no_output: str = "no model is written",
        problem: Callable[[int, int], Exception] | None = None,
        monitor: Monitor | None = None,
    ):
        self.loss, self.settings = loss, settings
        self.optimizer, self.schedule = optimizer_for(settings)
        self.steps, self.log_every = int(settings["steps"]), int(settings["log_every"])
        self.checkpoint_every = int(settings.get("checkpoint_every") or self.steps)
        self.path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.digest, self.describe, self.no_output = fingerprint, describe, no_output
        self.problem, self.monitor = problem, monitor

    def _resume(self, state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The checkpoint's header and state if it belongs to this run; otherwise None, with a logged reason."""
        if self.path is None or not self.path.exists():
            return None
        try:
            header = checkpoint.read_header(self.path)
            if header.get("fingerprint") != self.digest:
                log.warning(
                    "ignoring checkpoint %s: it was written for other training inputs (model, training settings, "
                    "dt, seed or data differ); starting from step 0 and overwriting it", self.path,
                )
                return None
            return checkpoint.load(self.path, state)
        except InputFileError as err:
            log.warning("ignoring checkpoint: %s; starting from step 0", err)
            return None

    def _kept(self, checkpointed: int | None) -> str:
        if self.path is None:
            return f"no checkpoint is kept (none configured); {self.no_output}"
        if checkpointed is None:
            return f"no checkpoint was written before it; {self.no_output}"
        return f"the last good checkpoint (step {checkpointed}) is kept in {self.path}; {self.no_output}"

    def _check(self, health: Health, checkpointed: int | None) -> None:
        """Raise for the first bad step recorded so far (a divergence before a problem on the same step)."""
        bad, problem = int(health.bad_step), int(health.problem_step)
        if bad >= 0 and (problem < 0 or bad <= problem):
            for name, value in health.bad_terms._asdict().items():
                if not np.isfinite(float(value)):
                    raise TrainingDiverged(f"training diverged at step {bad}: loss term {name!r} is "
                                           f"{float(value)}; {self._kept(checkpointed)}")
            raise TrainingDiverged(f"training diverged at step {bad}: gradient norm is "
                                   f"{float(health.bad_grad_norm)}; {self._kept(checkpointed)}")
        if problem >= 0 and self.problem is not None:
            raise self.problem(problem, int(health.problem_count))

    def fit(self, model: eqx.Module, batches: Batches) -> tuple[eqx.Module, pd.DataFrame]:
        """Train from `model`; returns the EMA model and the history (one row per `log_every` steps and
        the last step: step, the loss terms, learning rate, gradient norm, seconds)."""
        step_fn = compiled_step(self.loss, self.optimizer, float(self.settings["ema_decay"]))
        params = eqx.filter(model, eqx.is_inexact_array)
        state = dict(model=model, opt_state=self.optimizer.init(params), ema=params, data=batches.state)
        first, rows, before, checkpointed = 0, [], 0.0, None
        resumed = self._resume(state)
        if resumed is not None:
            header, state = resumed
            first, before = header["step"], header["seconds"]
            # the checkpoint's JSON sorts the keys: restore the columns' order, so a resumed log equals a clean one
            rows = [{k: r[k] for k in header.get("columns", r)} for r in header["history"]]
            if self.monitor is not None:
                self.monitor.rows = list(header.get("monitor", []))
            checkpointed = first
            log.info("resuming from checkpoint %s at step %d of %d", self.path, first, self.steps)
        model, opt_state, ema, data = state["model"], state["opt_state"], state["ema"], state["data"]
        health, start = None, time.perf_counter()

        def save(done: int) -> None:
            header = dict(fingerprint=self.digest, step=done, history=rows, columns=list(rows[0]) if rows else [],
                          seconds=before + time.perf_counter() - start,
                          monitor=self.monitor.rows if self.monitor is not None else [])
            checkpoint.save(self.path, header, dict(model=model, opt_state=opt_state, ema=ema, data=data))
            log.info("checkpoint at step %d written to %s", done, self.path)

        with StopRequests() as stop:
            for step in range(first, self.steps):
                data, batch = batches.batch(data, step)
                if health is None:
                    health = initial_health(self.loss, model, batch)
                model, opt_state, ema, total, terms, grad_norm, health = step_fn(
                    model, opt_state, ema, jnp.asarray(step, jnp.float32), batch, health
                )
                done = step + 1
                logging_step = done % self.log_every == 0 or done == self.steps
                checkpoint_step = self.path is not None and done % self.checkpoint_every == 0 and done < self.steps
                stopping = stop.signal is not None and done < self.steps
                if logging_step or checkpoint_step or stopping:
                    self._check(health, checkpointed)
                if logging_step:
                    rows.append(self._row(done, total, terms, grad_norm, before + time.perf_counter() - start, first,
                                          start))
                    if self.monitor is not None:
                        self.monitor(eqx.combine(ema, model), done)
                if checkpoint_step or (stopping and self.path is not None and checkpointed != done):
                    save(done)
                    checkpointed = done
                if stopping:
                    raise Preempted(self._preempted(stop.signal, done))
        if health is not None:
            self._check(health, checkpointed)
        return eqx.combine(ema, model), pd.DataFrame(rows)

    def _preempted(self, sig: signal.Signals, done: int) -> str:
        if self.path is None:
            return f"training stopped by {sig.name} at step {done} of {self.steps}; no checkpoint is configured, " \
                   f"so a rerun starts from step 0; {self.no_output}"
        return f"training stopped by {sig.name} at step {done} of {self.steps}; its state is saved in {self.path}: " \
               f"rerun to resume from step {done}; {self.no_output}"

    def _row(self, done: int, total: jax.Array, terms: Terms, grad_norm: jax.Array, seconds: float,
             first: int, start: float) -> dict[str, Any]:
        """The history row of a logging step (the loss, then its other terms) and its progress line."""
        parts = {name: float(value) for name, value in terms._asdict().items() if name != "total"}
        row = dict(step=done, loss=float(total), **parts, learning_rate=float(self.schedule(done - 1)),
                   grad_norm=float(grad_norm), seconds=seconds)
        rate = (done - first) / (time.perf_counter() - start)
        detail = f" ({', '.join(f'{k} {v:.5g}' for k, v in parts.items())})" if parts else ""
        log.info("%s %d/%d loss %.5g%s lr %.3g | %.1f steps/s, %.0f s left", self.describe, done, self.steps,
                 row["loss"], detail, row["learning_rate"], rate, (self.steps - done) / rate)
        return row
