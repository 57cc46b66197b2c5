"""Denoising score matching on s_g only (App. D.3, eq. (88); F.8–F.9), for the MIPS system.

One step of a thermal dynamics without drift, r̃ = r + σξ, is applied to the whole snapshot (x *and* g,
F.8; the drift is neglected as higher order in Δt, F.9). The transition score in g is −ξ_g/σ, so

    L_d = E |s_g(x̃, g̃) + ξ_g/σ|²,

averaged over a batch of particles of one snapshot (the loss splits over particles and the network is
particle-level, F.9). Up to a constant it equals E|s_g − ∇_g log ρ_σ|² where ρ_σ is the density of the
noised data (84), so its minimiser is the score of the noised density, which tends to the score of the
data as σ → 0.

`fit_denoising` trains a `LocalTransformerScore` with it: RAdam on a warmup-cosine schedule (optax), an
exponential moving average (EMA) of the weights that is never reset, and a guard that stops with
`TrainingDiverged` at the first non-finite loss or gradient.
"""

import functools
import logging
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pandas as pd
from jaxtyping import Array, Float, Int, PRNGKeyArray

from activeflow import checkpoint, io
from activeflow.local_transformer import LocalTransformerScore, k_nearest, nearest_search
from activeflow.neighbours import NeighbourOverflow, NeighbourSearch
from activeflow.seeding import derive_key
from activeflow.train import check_finite, fingerprint, make_optimizer, resume_checkpoint

log = logging.getLogger(__name__)
Snapshot = Float[Array, "N d"]
# score_g(x̃, g̃, particles) -> s_g of those particles, shape (n, d)
ScoreG = Callable[[Snapshot, Snapshot, Int[Array, " n"]], Float[Array, "n d"]]


class DenoisingTerms(NamedTuple):
    total: Float[Array, ""]


def noise(key: PRNGKeyArray, x: Snapshot, g: Snapshot, sigma: float):
    """(x̃, g̃, ξ_g) with x̃ = x + σξ_x, g̃ = g + σξ_g, ξ standard normal."""
    kx, kg = jax.random.split(key)
    xi_x = jax.random.normal(kx, x.shape, x.dtype)
    xi_g = jax.random.normal(kg, g.shape, g.dtype)
    return x + sigma * xi_x, g + sigma * xi_g, xi_g


def denoising_loss(
    score_g: ScoreG,
    x: Snapshot,
    g: Snapshot,
    particles: Int[Array, " n"],
    key: PRNGKeyArray,
    sigma: float,
    has_aux: bool = False,
    antithetic: bool = False,
):
    """(88) on s_g for one snapshot: mean over `particles` of |s_g^i(x̃, g̃) + ξ_g^i/σ|², the whole
    snapshot being noised (the neighbours of a particle are noised too). With `has_aux`, score_g
    returns (s_g, aux) and this returns (loss, aux) (aux of the + draw, combined with & for flags).

    With `antithetic`, the mean of the loss at the noise ξ and at −ξ: each is an unbiased draw of (88),
    so their mean is too, and the term of the gradient linear in ξ — the one of order 1/σ that swamps
    the signal for small σ — cancels between them to first order in σ (twice the forward passes)."""
    xt, gt, xi_g = noise(key, x, g, sigma)
    out = score_g(xt, gt, particles)
    s, aux = out if has_aux else (out, None)
    loss = jnp.mean(jnp.sum((s + xi_g[particles] / sigma) ** 2, axis=-1))
    if antithetic:
        out_m = score_g(2 * x - xt, 2 * g - gt, particles)
        s_m, aux_m = out_m if has_aux else (out_m, None)
        loss = 0.5 * (loss + jnp.mean(jnp.sum((s_m - xi_g[particles] / sigma) ** 2, axis=-1)))
        aux = aux & aux_m if has_aux else None
    return (loss, aux) if has_aux else loss


def local_score_g(model: LocalTransformerScore, search: NeighbourSearch, box: float, sigma: float = 0.0):
    """score_g(x̃, g̃, particles) -> (s_g of the particles, their completeness flags) for a local
    transformer, the neighbours of the (noised) snapshot being chosen by `k_nearest` with `search`
    (use with `denoising_loss(..., has_aux=True)`).

    With the model's Boltzmann shift and σ > 0, the shift is the noised Gaussian's score −g̃/(1 + σ²)
    instead of −g̃: if g ~ N(0, 1) independently of x (v0 = 0), the noised density's g-score is exactly
    that, so the network's correction N is learned relative to it and the trained s_g = −g + N carries
    no O(σ²) bias from the Gaussian part (only the smoothing of N itself)."""
    shrink = sigma**2 / (1 + sigma**2) if model.shift else 0.0

    def score_g(xt, gt, particles):
        indices, complete = k_nearest(search, xt, model.n_neighbours, particles)
        _, s_g = model.at(xt, gt, particles, indices, box)
        return s_g + shrink * gt[particles], complete

    return score_g


# The 8 symmetries of the square (rotations by multiples of 90° and reflections), as matrices acting on
# row vectors; each maps a periodic square box centred on 0 onto itself.
SQUARE_SYMMETRIES = jnp.array([
    [[1, 0], [0, 1]], [[0, 1], [-1, 0]], [[-1, 0], [0, -1]], [[0, -1], [1, 0]],
    [[1, 0], [0, -1]], [[-1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [-1, 0]],
])


def square_symmetry(key: PRNGKeyArray, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
    """x and g of the whole snapshot under one random symmetry of the square: an exact symmetry of
    isotropic particles in a periodic square box (data augmentation; the network is not built
    rotation-equivariant, and without it learns directions the data happen to favour)."""
    r = SQUARE_SYMMETRIES[jax.random.randint(key, (), 0, 8)].astype(x.dtype)
    return x @ r, g @ r


def make_denoising_step(optimizer: optax.GradientTransformation, search: NeighbourSearch, box: float,
                        sigma: float, ema_decay: float, augment: bool, antithetic: bool = False):
    @eqx.filter_jit
    def step_fn(model, opt_state, ema, step, xs, gs, batch_size, key):
        # One snapshot and `batch_size` distinct particles of it; the step's randomness is fold_in(key, step).
        ksnap, kpart, ksym, key = jax.random.split(jax.random.fold_in(key, step), 4)
        s = jax.random.randint(ksnap, (), 0, xs.shape[0])
        x, g = square_symmetry(ksym, xs[s], gs[s]) if augment else (xs[s], gs[s])
        particles = jax.random.choice(kpart, x.shape[0], (batch_size,), replace=False)

        def loss_fn(m):
            loss, complete = denoising_loss(local_score_g(m, search, box, sigma), x, g, particles, key, sigma, True,
                                            antithetic)
            return loss, jnp.sum(~complete)

        (loss, incomplete), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        # Same EMA as `train.fit`: warm start, never reset.
        decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))  # step: an integer array
        ema = optax.incremental_update(eqx.filter(model, eqx.is_inexact_array), ema, 1.0 - decay)
        return model, opt_state, ema, loss, optax.tree.norm(grads), incomplete

    return step_fn


@functools.lru_cache(maxsize=8)
def _compiled_step(steps, warmup_steps, learning_rate, optimizer, clip_norm, search, box, sigma, ema_decay, augment,
                   antithetic):
    """Optimiser, schedule and jitted step for these settings; cached, so that repeated fits with the
    same settings (a notebook, a test) reuse the compiled step."""
    opt, schedule = make_optimizer(dict(
        steps=steps, warmup_steps=warmup_steps, learning_rate=learning_rate, optimizer=optimizer,
        clip_norm=clip_norm,
    ))
    return opt, schedule, make_denoising_step(opt, search, box, sigma, ema_decay, augment, antithetic)


def fit_denoising(
    model: LocalTransformerScore,
    x: Float[Array, "S N d"],
    g: Float[Array, "S N d"],
    box: float,
    *,
    sigma: float,
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int,
    key: PRNGKeyArray,
    ema_decay: float = 0.999,
    optimizer: str = "radam",
    clip_norm: float = float("inf"),
    search: NeighbourSearch | None = None,
    log_every: int = 100,
    augment: bool = False,
    antithetic: bool = False,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
) -> tuple[LocalTransformerScore, pd.DataFrame]:
    """Train on snapshots x, g of shape (S, N, d) (S ≥ 1) in a periodic box of side `box`; each step
    draws one snapshot and `batch_size` distinct particles of it, noises the whole snapshot and takes
    one optimiser step on (88). With `augment`, each snapshot is first mapped by a random symmetry of the
    square (`square_symmetry`; needs a square box centred on 0); with `antithetic`, each step's loss is
    the mean over the noise ξ and −ξ (`denoising_loss`). Returns the EMA model and a log (one row per
    `log_every` steps: step, loss, learning rate, gradient norm, seconds). `search` defaults to
    `nearest_search` on the data.

    With `checkpoint_path`, the state (weights, optimiser, EMA) is written there every `checkpoint_every`
    steps, and a call with the same inputs resumes from it: each step's randomness depends only on the
    step, so the resumed result is the uninterrupted one bit for bit. A checkpoint of other inputs
    (fingerprint of the settings, initial weights, key and data) is ignored with a warning.

    Raises `TrainingDiverged` at the first non-finite loss or gradient norm (no model is returned), and
    `NeighbourOverflow` if a noised snapshot's K nearest neighbours were not certainly found."""
    x, g = jnp.asarray(x), jnp.asarray(g)
    if x.ndim == 2:
        x, g = x[None], g[None]
    n = x.shape[1]
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} particles of a snapshot")
    if search is None:
        search = nearest_search(x, box, model.n_neighbours)
    opt, schedule, step_fn = _compiled_step(
        steps, warmup_steps, float(learning_rate), optimizer, float(clip_norm), search, float(box), float(sigma),
        float(ema_decay), bool(augment), bool(antithetic),
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    state = dict(model=model, opt_state=opt.init(params), ema=params)
    rows, start, first, before = [], time.perf_counter(), 0, 0.0
    kept = "no model is returned"
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None:
        settings = dict(sigma=sigma, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                        warmup_steps=warmup_steps, ema_decay=ema_decay, optimizer=optimizer, clip_norm=clip_norm,
                        augment=augment, antithetic=antithetic, search=repr(search), box=box)
        digest = fingerprint(model, settings, 0.0, "denoising", key, x, g)
        resumed = resume_checkpoint(path, digest, state)
        if resumed is not None:
            header, state = resumed
            first, rows, before = header["step"], header["history"], header["seconds"]
            log.info("resuming from checkpoint %s at step %d of %d", path, first, steps)
        kept = f"the last good checkpoint (if any) is kept in {path}; no model is returned"
    model, opt_state, ema = state["model"], state["opt_state"], state["ema"]
    for step in range(first, steps):
        model, opt_state, ema, loss, grad_norm, incomplete = step_fn(
            model, opt_state, ema, jnp.asarray(step), x, g, batch_size, key
        )
        check_finite(step + 1, DenoisingTerms(loss), float(grad_norm), kept)
        if int(incomplete):
            raise NeighbourOverflow(
                f"step {step + 1}: the {model.n_neighbours} nearest neighbours of {int(incomplete)} noised "
                f"particles lie beyond the search cut-off {search.cutoff:g} (or a capacity overflowed); "
                "pass a search with a larger cut-off"
            )
        done = step + 1
        if done % log_every == 0 or done == steps:
            seconds = time.perf_counter() - start
            rows.append(dict(step=done, loss=float(loss), learning_rate=float(schedule(step)),
                             grad_norm=float(grad_norm), seconds=before + seconds))
            rate = (done - first) / seconds
            log.info("denoising step %d/%d loss %.5g lr %.3g | %.1f steps/s, %.0f s left",
                     done, steps, float(loss), rows[-1]["learning_rate"], rate, (steps - done) / rate)
        if path is not None and checkpoint_every and done % checkpoint_every == 0 and done < steps:
            header = dict(fingerprint=digest, step=done, history=rows,
                          seconds=before + time.perf_counter() - start)
            checkpoint.save(path, header, dict(model=model, opt_state=opt_state, ema=ema))
            log.info("checkpoint at step %d written to %s", done, path)
    return eqx.combine(ema, model), pd.DataFrame(rows)


def exact_noised_gaussian_loss(a: float, variance: float, sigma: float, dim: int = 1) -> float:
    """E|−a g̃ + ξ/σ|² for g ~ N(0, variance·I_dim), g̃ = g + σξ, which is
    dim·(a²(variance + σ²) − 2a + 1/σ²), minimal at a = 1/(variance + σ²), the score of the noised
    density (reference for tests)."""
    return dim * (a**2 * (variance + sigma**2) - 2 * a + 1 / sigma**2)


# ---- stage `train_denoising` ------------------------------------------------------------------------

NETWORK_KEYS = ("embed_dim", "n_layers", "n_heads", "mlp_width", "mlp_depth", "n_neighbours")


def model_spec(parameters: dict[str, Any], network: dict[str, Any]) -> dict[str, Any]:
    """model.json of the MIPS score: the training system and the local transformer's sizes."""
    hyper = {k: int(network[k]) for k in NETWORK_KEYS} | dict(
        dim=2, shift=bool(network["boltzmann_shift"]), zero_output=bool(network["boltzmann_shift"])
    )
    return dict(system="mips", parameters=parameters, network=network, hyperparameters=hyper)


def build_local_model(spec: dict[str, Any], key: jax.Array | None) -> LocalTransformerScore:
    """The skeleton (key None) or fresh weights of the model described by `model_spec`."""
    key = jax.random.key(0) if key is None else key
    return LocalTransformerScore.build(**spec["hyperparameters"], key=key)


def run(parameters: dict[str, Any], network: dict[str, Any], training: dict[str, Any], seed: int,
        samples_path: str, model_path: str, spec_path: str, csv_path: str,
        checkpoint_path: str | None = None) -> None:
    """Stage `train_denoising`: fit s_g of the local transformer to the MIPS snapshots with (88). The
    checkpoint is removed once the model is saved; after a kill it stays, and the next run resumes."""
    ds = io.read_netcdf(samples_path, required=("x", "g"))
    n = int(parameters["n_particles"])
    io.check_samples(ds, samples_path, "mips", parameters, (n, 2))
    box = float(ds.attrs["box"])
    spec = model_spec(parameters, network)
    model = build_local_model(spec, derive_key(seed, "mips", "train", "init"))
    x = jnp.asarray(ds.x.values, jnp.float32)
    g = jnp.asarray(ds.g.values, jnp.float32)
    log.info("denoising score matching on %d snapshots of N = %d from %s: %d steps of %d particles, sigma = %g",
             x.shape[0], n, samples_path, training["steps"], training["batch_size"], training["sigma"])
    model, history = fit_denoising(
        model, x, g, box, sigma=float(training["sigma"]), steps=int(training["steps"]),
        batch_size=int(training["batch_size"]), learning_rate=float(training["learning_rate"]),
        warmup_steps=int(training["warmup_steps"]), key=derive_key(seed, "mips", "train", "data"),
        ema_decay=float(training["ema_decay"]), optimizer=training["optimizer"],
        clip_norm=float(training["clip_norm"]), log_every=int(training["log_every"]),
        augment=bool(training["augment"]), antithetic=bool(training["antithetic"]), checkpoint_path=checkpoint_path,
        checkpoint_every=int(training["checkpoint_every"]),
    )
    io.write_csv(history, csv_path)
    io.save_model(model, spec, model_path, spec_path)
    log.info("wrote %s, %s and %s", model_path, spec_path, csv_path)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
