"""Denoising score matching on s_g only (App. D.3, eq. (88); F.8–F.9), for the MIPS system.

One step of a thermal dynamics without drift, r̃ = r + σξ, is applied to the whole snapshot (x *and* g,
F.8; the drift is neglected as higher order in Δt, F.9). The transition score in g is −ξ_g/σ, so

    L_d = E |s_g(x̃, g̃) + ξ_g/σ|²,

averaged over a batch of particles of one snapshot (the loss splits over particles and the network is
particle-level, F.9). Up to a constant it equals E|s_g − ∇_g log ρ_σ|² where ρ_σ is the density of the
noised data (84), so its minimiser is the score of the noised density, which tends to the score of the
data as σ → 0.

At ε = 0 that smoothing is not small: x is slaved to g (μF + v0 g ≈ 0), so the law of g given x is
far narrower than any usable σ, and the smoothed score's EPR is orders of magnitude below the truth
(docs/methods.md). The other objective here has no σ: score matching in g alone,

    L_g = E[|s_g^i|² + 2∇_{g^i}·s_g^i]   (per particle, exact d×d divergence),

which equals E|s_g − ∇_g log ρ|² − E|∇_g log ρ|² by integration by parts in g only (the law of g given x
is smooth, whatever ε), so its minimiser is the score of the data itself.

`fit_denoising` trains a `LocalTransformerScore` with either (`objective`) through the `Trainer`
(optimiser, schedule, EMA, checkpoints, the guard against non-finite values).
"""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from activeflow.models.imbalance import ImbalanceScore
from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.physics.neighbours import NeighbourOverflow, NeighbourSearch, k_nearest, nearest_search
from activeflow.training.trainer import Monitor, Trainer, fingerprint

Snapshot = Float[Array, "N d"]
# score_g(x̃, g̃, particles) -> s_g of those particles, shape (n, d)
ScoreG = Callable[[Snapshot, Snapshot, Int[Array, " n"]], Float[Array, "n d"]]


OBJECTIVES = ("denoising", "score_matching")


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


def score_matching_g_loss(model: LocalTransformerScore | ImbalanceScore, search: NeighbourSearch, box: float,
                          x: Snapshot, g: Snapshot, particles: Int[Array, " n"], force: Snapshot | None = None):
    """(L_g, completeness flags): the mean over `particles` of |s_g^i|² + 2∇_{g^i}·s_g^i on the clean
    snapshot, with the exact divergence (`particle_divergence`). An `ImbalanceScore` needs the snapshot's
    `force`, and its loss is given times η², in the network's own units where it is O(1) (the same
    minimiser; RAdam's first, unadapted steps would otherwise be of the loss's size, ~1/η²)."""
    indices, complete = k_nearest(search, x, model.n_neighbours, particles)
    if isinstance(model, ImbalanceScore):
        value, div = model.at(x, g, force, particles, indices, box)
        scale = model.eta**2
    else:
        value, jac = jax.vmap(lambda i, nb: model.particle_divergence(x, g, i, nb, box))(particles, indices)
        div, scale = jnp.trace(jac, axis1=-2, axis2=-1), 1.0
    return scale * jnp.mean(jnp.sum(value**2, axis=-1) + 2 * div), complete


# The 8 symmetries of the square (rotations by multiples of 90° and reflections), as matrices acting on
# row vectors; each maps a periodic square box centred on 0 onto itself. NumPy, so that importing this
# module starts no JAX backend (the stage sets its thread count first).
SQUARE_SYMMETRIES = np.array([
    [[1, 0], [0, 1]], [[0, 1], [-1, 0]], [[-1, 0], [0, -1]], [[0, -1], [1, 0]],
    [[1, 0], [0, -1]], [[-1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [-1, 0]],
])


def square_symmetry(key: PRNGKeyArray, *fields: Snapshot) -> tuple[Snapshot, ...]:
    """Per-particle vector fields of the whole snapshot (x, g, the force, …) under one random symmetry of
    the square, the same for all: an exact symmetry of isotropic particles in a periodic square box (data
    augmentation; the network is not built rotation-equivariant, and without it learns directions the
    data happen to favour)."""
    r = jnp.asarray(SQUARE_SYMMETRIES, fields[0].dtype)[jax.random.randint(key, (), 0, 8)]
    return tuple(f @ r for f in fields)


@functools.lru_cache(maxsize=16)
def denoising_batch_loss(search: NeighbourSearch, box: float, sigma: float, augment: bool, antithetic: bool,
                         objective: str = "denoising"):
    """The loss of one training step for the `Trainer`, from a batch (snapshots xs, gs, batch size,
    step, key): one snapshot and `batch_size` distinct particles of it, drawn from fold_in(key, step),
    optionally mapped by a symmetry of the square, then (88) or, with objective "score_matching", L_g
    (σ and `antithetic` unused). Its auxiliary output counts the particles whose K nearest neighbours
    were not certainly found (a `Trainer` problem). Cached: the same function for the same settings, so
    that repeated fits reuse the compiled step."""
    if objective not in OBJECTIVES:
        raise ValueError(f"training objective {objective!r}; allowed: {list(OBJECTIVES)}")

    def loss(model: LocalTransformerScore | ImbalanceScore, batch):
        xs, gs, forces, batch_size, step, key = batch
        ksnap, kpart, ksym, key = jax.random.split(jax.random.fold_in(key, step), 4)
        s = jax.random.randint(ksnap, (), 0, xs.shape[0])
        fields = (xs[s], gs[s]) if forces is None else (xs[s], gs[s], forces[s])
        if augment:  # the force turns with the snapshot (isotropic pairs in a square box)
            fields = square_symmetry(ksym, *fields)
        x, g, f = fields if forces is not None else (*fields, None)
        particles = jax.random.choice(kpart, x.shape[0], (batch_size,), replace=False)
        if objective == "score_matching":
            value, complete = score_matching_g_loss(model, search, box, x, g, particles, f)
        else:
            value, complete = denoising_loss(local_score_g(model, search, box, sigma), x, g, particles, key, sigma,
                                             True, antithetic)
        return value, (DenoisingTerms(value), jnp.sum(~complete))

    return loss


class SnapshotBatches:
    """Every step's batch is drawn inside the compiled loss from the step number: nothing to checkpoint."""

    state = ()

    def __init__(self, x: jax.Array, g: jax.Array, batch_size: int, key: PRNGKeyArray,
                 force: jax.Array | None = None):
        self.x, self.g, self.force, self.batch_size, self.key = x, g, force, batch_size, key

    def batch(self, state, step: int):
        return state, (self.x, self.g, self.force, self.batch_size, jnp.asarray(step), self.key)


def fit_denoising(
    model: LocalTransformerScore | ImbalanceScore,
    x: Float[ArrayLike, "S N d"],
    g: Float[ArrayLike, "S N d"],
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
    objective: str = "denoising",
    force: Float[ArrayLike, "S N d"] | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    monitor: Monitor | None = None,
) -> tuple[LocalTransformerScore | ImbalanceScore, pd.DataFrame]:
    """Train on snapshots x, g of shape (S, N, d) (S ≥ 1) in a periodic box of side `box`; each step
    draws one snapshot and `batch_size` distinct particles of it, noises the whole snapshot and takes
    one optimiser step on (88). With `augment`, each snapshot is first mapped by a random symmetry of the
    square (`square_symmetry`; needs a square box centred on 0); with `antithetic`, each step's loss is
    the mean over the noise ξ and −ξ (`denoising_loss`). With objective "score_matching" the loss is
    L_g on the clean snapshot instead (`score_matching_g_loss`; σ and `antithetic` then unused). An
    `ImbalanceScore` needs the force on every particle of every snapshot (`force`, shape of x) and the
    score-matching objective (noise on x would move the force). Returns the EMA model and a log (one row per
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
    if isinstance(model, ImbalanceScore):
        if objective != "score_matching":
            raise ValueError("a score fed the force imbalance is trained with objective 'score_matching' only")
        if force is None:
            raise ValueError("a score fed the force imbalance needs the force on every particle (force=...)")
        force = jnp.asarray(force).reshape(x.shape)
    elif force is not None:
        raise ValueError("force is used only by a score fed the force imbalance (network.inputs: force_imbalance)")
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} particles of a snapshot")
    if search is None:
        search = nearest_search(x, box, model.n_neighbours)
    settings = dict(objective=objective, sigma=sigma, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                    warmup_steps=warmup_steps, ema_decay=ema_decay, optimizer=optimizer, clip_norm=clip_norm,
                    augment=augment, antithetic=antithetic, search=repr(search), box=box,
                    log_every=log_every, checkpoint_every=checkpoint_every)
    data = [x, g] if force is None else [x, g, force]  # the force depends on the system's cut-off too
    digest = fingerprint(model, settings, key, data) if checkpoint_path is not None else ""

    def overflow(step: int, count: int) -> NeighbourOverflow:
        return NeighbourOverflow(
            f"step {step}: the {model.n_neighbours} nearest neighbours of {count} particles lie beyond "
            f"the search cut-off {search.cutoff:g} (or a capacity overflowed); pass a search with a larger cut-off"
        )

    loss = denoising_batch_loss(search, float(box), float(sigma), bool(augment), bool(antithetic), objective)
    trainer = Trainer(loss, settings, checkpoint_path=checkpoint_path, fingerprint=digest, describe=f"{objective} step",
                      no_output="no model is returned", problem=overflow, monitor=monitor)
    return trainer.fit(model, SnapshotBatches(x, g, batch_size, key, force))


def exact_noised_gaussian_loss(a: float, variance: float, sigma: float, dim: int = 1) -> float:
    """E|−a g̃ + ξ/σ|² for g ~ N(0, variance·I_dim), g̃ = g + σξ, which is
    dim·(a²(variance + σ²) − 2a + 1/σ²), minimal at a = 1/(variance + σ²), the score of the noised
    density (reference for tests)."""
    return dim * (a**2 * (variance + sigma**2) - 2 * a + 1 / sigma**2)
