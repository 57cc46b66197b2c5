"""Every divergence the code computes equals a full-Jacobian and a finite-difference reference."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from activeflow.models.mlp import MLPScore
from activeflow.models.score_model import ScoreModel
from activeflow.numerics.divergence import score_and_divergence


def _block_traces(fn, x, g, which):
    n, d = x.shape
    arg = 0 if which == "x" else 1
    out = 0 if which == "x" else 1
    jac = jax.jacfwd(lambda *a: fn(*a)[out], argnums=arg)(x, g).reshape(n * d, n * d)
    return jnp.diagonal(jac).reshape(n, d).sum(-1)


def _finite_difference_traces(fn, x, g, which, h=1e-5):
    n, d = x.shape
    out = np.zeros(n)
    for i in range(n):
        for k in range(d):
            e = jnp.zeros_like(x).at[i, k].set(h)
            if which == "x":
                plus, minus = fn(x + e, g)[0], fn(x - e, g)[0]
            else:
                plus, minus = fn(x, g + e)[1], fn(x, g - e)[1]
            out[i] += float(plus[i, k] - minus[i, k]) / (2 * h)
    return out


def _check(fn, x, g):
    s_x, s_g, div_x, div_g = score_and_divergence(fn, x, g)
    np.testing.assert_allclose(s_x, fn(x, g)[0], atol=1e-12)
    np.testing.assert_allclose(s_g, fn(x, g)[1], atol=1e-12)
    for which, div in (("x", div_x), ("g", div_g)):
        np.testing.assert_allclose(div, _block_traces(fn, x, g, which), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(div, _finite_difference_traces(fn, x, g, which), rtol=1e-5, atol=1e-6)


def test_mlp_divergence_per_particle(rng):
    net = MLPScore(3, 2, width=24, depth=2, period=None, key=jax.random.key(1))
    x, g = (jnp.asarray(a) for a in rng.normal(size=(2, 3, 2)))
    _check(net, x, g)


def test_periodic_mlp_divergence(rng, ring):
    net = MLPScore(1, 1, width=24, depth=3, period=ring.length, key=jax.random.key(2))
    for xv in (-7.0, 0.1, 2.2):
        _check(net, jnp.array([[xv]]), jnp.array([[rng.normal()]]))


def test_boltzmann_shifted_model_divergence(rng, linear):
    net = MLPScore(3, 2, width=16, depth=2, period=None, key=jax.random.key(3))
    model = ScoreModel(net, linear, shift=True)
    x, g = (jnp.asarray(a) for a in rng.normal(size=(2, 3, 2)))
    _check(model, x, g)
    # the shift itself contributes its analytic divergence: model − network = Boltzmann score
    d_model = score_and_divergence(model, x, g)
    d_net = score_and_divergence(net, x, g)
    div_b_x, _ = linear.drift_divergence(x, g)
    np.testing.assert_allclose(d_model[2] - d_net[2], div_b_x / linear.Dx, rtol=1e-10)
    np.testing.assert_allclose(d_model[3] - d_net[3], -linear.gamma * 2 / linear.Dg, rtol=1e-10)


def test_soft_disk_ring_model_divergence(ring):
    model = ScoreModel(MLPScore(1, 1, 8, 1, ring.length, key=jax.random.key(4)), dataclasses.replace(ring), shift=True)
    _check(model, jnp.array([[2.1]]), jnp.array([[0.3]]))


def test_transformer_divergence_per_particle(rng):
    from activeflow.models.transformer import TransformerScore

    net = TransformerScore(dim=2, embed_dim=16, n_layers=2, n_heads=2, mlp_width=16, mlp_depth=2, key=jax.random.key(5))
    x, g = (jnp.asarray(a) for a in rng.normal(scale=1.5, size=(2, 5, 2)))
    _check(eqx.filter_jit(net), x, g)


def test_boltzmann_shifted_transformer_on_the_trap(rng):
    from activeflow.models.transformer import TransformerScore
    from activeflow.physics.systems import Trap

    trap = Trap(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=5, dim=2)
    net = TransformerScore(dim=2, embed_dim=16, n_layers=1, n_heads=4, mlp_width=8, mlp_depth=1, key=jax.random.key(6))
    x, g = (jnp.asarray(a) for a in rng.normal(scale=1.5, size=(2, 5, 2)))
    _check(eqx.filter_jit(ScoreModel(net, trap, shift=True)), x, g)
