"""Training: it learns the exact score of a linear system, and stops clearly on a non-finite loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow import errors
from activeflow.models import registry
from activeflow.physics.linear import exact
from activeflow.physics.systems import Linear
from activeflow.training import checkpoint, score_matching
from activeflow.training.losses import composite_loss

NETWORK = dict(kind="mlp", width=32, depth=2, periodic=False, boltzmann_shift=False)
TRAINING = dict(
    optimizer="adam", learning_rate=3e-3, warmup_steps=20, steps=600, batch_size=256, lambda_sm=1.0,
    lambda_fpe=1.0, clip_norm=10.0, ema_decay=0.99, resample_steps=5, log_every=100,
)
PARAMS = dict(mu=1.0, v0=0.8, gamma=0.5, eps=0.3, trap=1.0, spring=0.0, n_particles=1, dim=1)


def _build():
    spec = dict(system="linear", parameters=PARAMS, network=NETWORK, hyperparameters=dict(
        n_particles=1, dim=1, width=32, depth=2, period=None))
    return registry.build_model(spec, jax.random.key(0))


def test_training_learns_the_exact_linear_score():
    system = Linear(**PARAMS)
    ex = exact(system)
    x, g = ex.sample(np.random.default_rng(0), 4096)
    model, history = score_matching.fit(_build(), jnp.asarray(x), jnp.asarray(g), TRAINING, 1e-2, jax.random.key(1))
    assert list(history.step) == [100, 200, 300, 400, 500, 600]
    xt, gt = ex.sample(np.random.default_rng(1), 2000)
    s_true = np.concatenate([a.reshape(len(a), -1) for a in ex.score(xt, gt)], 1)
    s_learned = np.concatenate(
        [np.asarray(a).reshape(len(xt), -1) for a in jax.vmap(model)(jnp.asarray(xt), jnp.asarray(gt))], 1
    )
    rel = np.linalg.norm(s_learned - s_true) / np.linalg.norm(s_true)
    assert rel < 0.1, rel
    # the loss (22) on held-out samples approaches its optimum −E|s|² = −tr Σ⁻¹
    terms = composite_loss(model, system, jnp.asarray(xt), jnp.asarray(gt), 1.0, 1.0)
    assert float(terms.score_matching) == pytest.approx(-ex.mean_squared_score(), rel=0.05)


def test_non_finite_loss_stops_with_the_step_and_term_and_keeps_the_checkpoint(tmp_path):
    # NaN in the first sample of the 6th batch: checkpoints at steps 2 and 4 come before it.
    key, n, batch = jax.random.key(1), 64, 8
    spike = int(score_matching.data_order(score_matching.epoch_keys(key)[0], 0, n)[5 * batch])
    x = jnp.ones((n, 1, 1)).at[spike].set(jnp.nan)
    training = dict(TRAINING, batch_size=batch, steps=20, checkpoint_every=2)
    expected = r"step 6: loss term 'score_matching' is nan; the last good checkpoint \(step 4\) is kept"
    with pytest.raises(errors.TrainingDiverged, match=expected):
        score_matching.fit(_build(), x, jnp.ones((n, 1, 1)), training, 1e-2, key, checkpoint_path=tmp_path / "c.ckpt")
    assert checkpoint.read_header(tmp_path / "c.ckpt")["step"] == 4
    with pytest.raises(errors.TrainingDiverged, match="step 6: .* no checkpoint is kept"):
        score_matching.fit(_build(), x, jnp.ones((n, 1, 1)), training, 1e-2, key)


def test_batch_larger_than_data_is_refused():
    with pytest.raises(ValueError, match="batch_size=256 exceeds the 10 training samples"):
        score_matching.fit(_build(), jnp.ones((10, 1, 1)), jnp.ones((10, 1, 1)), TRAINING, 1e-2, jax.random.key(1))


def test_stochastic_divergence_loss_is_unbiased():
    """The mean of the Hutchinson loss terms over many probe draws equals the exact terms: the score
    matching term by linearity, the FPE term because r1·r2 has independent factors."""
    from activeflow.training.losses import composite_loss

    system = Linear(**PARAMS)
    model = registry.build_model(
        dict(system="linear", parameters=PARAMS, network=dict(NETWORK, boltzmann_shift=True),
             hyperparameters=dict(n_particles=1, dim=1, width=32, depth=2, period=None)),
        jax.random.key(3),
    )
    x, g = (jnp.asarray(a) for a in exact(system).sample(np.random.default_rng(2), 8))
    ref = composite_loss(model, system, x, g, 1.0, 1.0)
    draws = jax.jit(jax.vmap(lambda k: composite_loss(model, system, x, g, 1.0, 1.0, "stochastic", k, 1)))(
        jax.random.split(jax.random.key(4), 4000)
    )
    for name in ("score_matching", "fpe_residual"):
        values = np.asarray(getattr(draws, name))
        se = values.std() / np.sqrt(values.size)
        assert se > 0  # the estimate is random, so the check below means something
        assert abs(values.mean() - float(getattr(ref, name))) < 4 * se, name
    # the square of a single residual estimate is biased upward by its variance: the same check fails
    from activeflow.training.losses import snapshot_terms, stochastic_snapshot_terms

    _, r_exact = snapshot_terms(model, system, x[0], g[0])
    _, r1, _ = jax.jit(jax.vmap(lambda k: stochastic_snapshot_terms(model, system, x[0], g[0], k, 1)))(
        jax.random.split(jax.random.key(5), 4000)
    )
    squares = np.asarray(r1) ** 2
    assert squares.mean() - float(r_exact) ** 2 > 4 * squares.std() / np.sqrt(squares.size)


def test_training_with_the_stochastic_divergence_learns_the_linear_score():
    system = Linear(**PARAMS)
    ex = exact(system)
    x, g = ex.sample(np.random.default_rng(0), 4096)
    training = dict(TRAINING, divergence="stochastic", n_probes=2)
    model, _ = score_matching.fit(_build(), jnp.asarray(x), jnp.asarray(g), training, 1e-2, jax.random.key(1))
    xt, gt = ex.sample(np.random.default_rng(1), 2000)
    s_true = np.concatenate([a.reshape(len(a), -1) for a in ex.score(xt, gt)], 1)
    s_learned = np.concatenate(
        [np.asarray(a).reshape(len(xt), -1) for a in jax.vmap(model)(jnp.asarray(xt), jnp.asarray(gt))], 1
    )
    assert np.linalg.norm(s_learned - s_true) / np.linalg.norm(s_true) < 0.15


def test_the_stochastic_loss_takes_the_shift_divergence_exactly():
    """With the Boltzmann shift only the network is probed and the shift's traces are added exactly: on
    a trap snapshot with overlapping disks the estimates stay unbiased, and their spread is far below
    that of probing the whole score, whose Jacobian holds the stiff pair Hessian over ε."""
    from activeflow.models.mlp import MLPScore
    from activeflow.models.score_model import ScoreModel
    from activeflow.physics.systems import Trap
    from activeflow.training.losses import snapshot_terms, stochastic_snapshot_terms

    system = Trap(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=6, dim=2)
    model = ScoreModel(MLPScore(6, 2, 16, 2, None, key=jax.random.key(0)), system, shift=True)
    rng = np.random.default_rng(0)
    x, g = (jnp.asarray(rng.normal(scale=s, size=(6, 2)), jnp.float32) for s in (1.5, 1.0))
    sm_exact, r_exact = snapshot_terms(model, system, x, g)
    keys = jax.random.split(jax.random.key(1), 1000)

    def draws(score_fn):
        return jax.jit(jax.vmap(lambda k: stochastic_snapshot_terms(score_fn, system, x, g, k, 1)))(keys)

    sm, r1, r2 = (np.asarray(a, np.float64) for a in draws(model))
    for values, exact_value in ((sm, sm_exact), (r1, r_exact), (r2, r_exact)):
        se = values.std() / np.sqrt(values.size)
        assert se > 0 and abs(values.mean() - float(exact_value)) < 4 * se + 1e-4 * abs(float(exact_value))
    sm_all, r1_all, _ = (np.asarray(a, np.float64) for a in draws(lambda a, b: model(a, b)))  # every coordinate
    assert abs(r1_all.mean() - float(r_exact)) < 4 * r1_all.std() / np.sqrt(r1_all.size)
    assert r1_all.std() > 5 * r1.std() and sm_all.std() > 5 * sm.std(), (r1_all.std(), r1.std())
