"""The particle transformer (App. E): permutation equivariance, its attention weights against the
Equinox attention it wraps, attention rollout (93), and a save/load round trip as a trap model."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow import io
from activeflow.models import registry
from activeflow.models.mlp import MLPScore
from activeflow.models.registry import network_hyperparameters
from activeflow.models.score_model import ScoreModel
from activeflow.models.transformer import (
    TransformerScore,
    attention_rollout,
    layer_norm,
    linear_rows,
    mlp_rows,
    rollout,
)
from activeflow.physics.systems import Ring

SMALL = dict(dim=2, embed_dim=16, n_layers=2, n_heads=2, mlp_width=16, mlp_depth=2)
TRAP = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=5, dim=2)


@pytest.fixture
def net() -> TransformerScore:
    return TransformerScore(**SMALL, key=jax.random.key(7))


@pytest.fixture
def snapshot(rng):
    return tuple(jnp.asarray(a) for a in rng.normal(scale=1.5, size=(2, 5, 2)))


def test_permuting_particles_permutes_both_outputs(net, snapshot, rng):
    x, g = snapshot
    net = eqx.filter_jit(net)
    s_x, s_g = net(x, g)
    assert s_x.shape == s_g.shape == (5, 2) and s_x.dtype == jnp.float64
    for _ in range(3):
        p = jnp.asarray(rng.permutation(5))
        p_x, p_g = net(x[p], g[p])
        np.testing.assert_allclose(p_x, s_x[p], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(p_g, s_g[p], rtol=1e-12, atol=1e-13)
    # no positional encoding and no fixed N: the same weights take any number of particles
    assert net(x[:3], g[:3])[0].shape == (3, 2)


def test_head_weights_reproduce_the_equinox_attention(net, snapshot):
    x, g = snapshot
    layer = net.layers[0]
    h = net.embed(x, g)
    att = layer.attention
    w = layer.head_weights(h)
    assert w.shape == (att.num_heads, 5, 5)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    values = jax.vmap(att.value_proj)(h).reshape(5, att.num_heads, att.vo_size)
    mixed = jnp.einsum("hij,jhc->ihc", w, values).reshape(5, -1)
    np.testing.assert_allclose(jax.vmap(att.output_proj)(mixed), att(h, h, h), rtol=1e-10, atol=1e-12)


def test_attention_maps_are_head_averages_per_layer(net, snapshot):
    x, g = snapshot
    maps = net.attention_maps(x, g)
    assert maps.shape == (2, 5, 5)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-12)
    h1 = net.layers[0](net.embed(x, g))  # the second map is taken on the first layer's output
    np.testing.assert_allclose(maps[1], net.layers[1].head_weights(h1).mean(0), rtol=1e-12)


def test_rollout_is_the_product_with_the_residual_identity(rng):
    a1, a2 = (a / a.sum(-1, keepdims=True) for a in rng.uniform(size=(2, 4, 4)))
    eye = np.eye(4)
    expected = 0.5 * (eye + a2) @ (0.5 * (eye + a1))  # later layers on the left
    np.testing.assert_allclose(rollout(jnp.asarray(np.stack([a1, a2]))), expected, rtol=1e-12)


def test_rollout_rows_sum_to_one_and_permute_with_the_particles(net, snapshot, rng):
    x, g = snapshot
    r = attention_rollout(net, x, g)
    assert r.shape == (5, 5)
    np.testing.assert_allclose(r.sum(-1), 1.0, rtol=1e-12)
    assert (r >= 0).all()
    p = jnp.asarray(rng.permutation(5))
    np.testing.assert_allclose(attention_rollout(net, x[p], g[p]), r[p][:, p], rtol=1e-10, atol=1e-13)


def test_rollout_of_uniform_attention_has_its_closed_form(snapshot):
    x, g = snapshot
    net = TransformerScore(**dict(SMALL, n_layers=3), key=jax.random.key(1))
    # zero keys make every logit equal: A_l = J/N in every layer, so with J² = NJ,
    # Π ½(I + J/N) = 2^{−L} I + (1 − 2^{−L}) J/N
    for i in range(3):
        proj = net.layers[i].attention.key_proj
        net = eqx.tree_at(lambda m: (m.layers[i].attention.key_proj.weight, m.layers[i].attention.key_proj.bias),
                          net, (jnp.zeros_like(proj.weight), jnp.zeros_like(proj.bias)))
    n, L = 5, 3
    np.testing.assert_allclose(net.attention_maps(x, g), 1.0 / n, rtol=1e-12)
    expected = 2.0**-L * np.eye(n) + (1 - 2.0**-L) * np.ones((n, n)) / n
    np.testing.assert_allclose(attention_rollout(net, x, g), expected, rtol=1e-12)


def test_rollout_through_a_score_model_and_refused_for_an_mlp(net, snapshot):
    from activeflow.physics.systems import Trap

    x, g = snapshot
    model = ScoreModel(net, Trap(**TRAP), shift=True)
    np.testing.assert_allclose(attention_rollout(model, x, g), attention_rollout(net, x, g))
    with pytest.raises(TypeError, match="transformer"):
        attention_rollout(MLPScore(5, 2, 8, 1, None, key=jax.random.key(0)), x, g)


def test_save_load_round_trip_as_a_trap_model(tmp_path, snapshot):
    network = dict(kind="transformer", embed_dim=16, n_layers=2, n_heads=4, mlp_width=12, mlp_depth=1, boltzmann_shift=True)
    spec = registry.model_spec("trap", TRAP, network)
    assert spec["hyperparameters"] == dict(dim=2, embed_dim=16, n_layers=2, n_heads=4, mlp_width=12, mlp_depth=1,
                                           zero_output=True)
    model = registry.build_model(spec, jax.random.key(3))
    # as after training: the decoders' last layers (zero at the start, see zero_output) are not zero
    last = lambda m: (m.network.decode_x.layers[-1].weight, m.network.decode_g.layers[-1].weight)  # noqa: E731
    model = eqx.tree_at(last, model, tuple(0.1 * jax.random.normal(jax.random.key(i), w.shape)
                                           for i, w in enumerate(last(model))))
    io.save_model(model, spec, tmp_path / "m.eqx", tmp_path / "m.json")
    loaded, loaded_spec = io.load_model(tmp_path / "m.eqx", tmp_path / "m.json", dict(system="trap", parameters=TRAP, network=network))
    assert isinstance(loaded.network, TransformerScore) and loaded.shift
    x, g = snapshot
    call = eqx.filter_jit(lambda m, x, g: m(x, g))  # one compilation for the three models
    for a, b in zip(call(loaded, x, g), call(model, x, g)):
        np.testing.assert_array_equal(a, b)
    # the skeleton alone (key 0) gives other outputs, so equality above came from the saved weights
    assert not np.allclose(call(registry.build_model(spec, None), x, g)[0], call(model, x, g)[0])


def test_bad_sizes_and_periodic_systems_are_refused(ring: Ring):
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TransformerScore(**dict(SMALL, embed_dim=18, n_heads=4), key=jax.random.key(0))
    with pytest.raises(ValueError, match="periodic"):
        network_hyperparameters(ring, dict(kind="transformer", embed_dim=16, n_layers=1, n_heads=2, mlp_width=8, mlp_depth=1))


def test_layer_norm_and_its_derivatives_are_those_of_the_equinox_module(rng):
    """`layer_norm` (closed-form forward-mode rule) against `jax.vmap(eqx.nn.LayerNorm)`: values,
    forward-mode products, and the reverse-mode gradient of a forward-mode product (as a loss on a
    divergence takes it), float64."""
    norm = eqx.nn.LayerNorm(6)
    norm = eqx.tree_at(lambda n: (n.weight, n.bias), norm,
                       (jnp.asarray(rng.normal(size=6)), jnp.asarray(rng.normal(size=6))))
    h, t = (jnp.asarray(rng.normal(size=(4, 6))) for _ in range(2))
    ours, theirs = (lambda h: layer_norm(norm, h)), jax.vmap(norm)
    np.testing.assert_allclose(ours(h), theirs(h), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jax.jvp(ours, (h,), (t,))[1], jax.jvp(theirs, (h,), (t,))[1], rtol=1e-12, atol=1e-12)
    # shifting a row by a constant leaves it unchanged, to first order too
    np.testing.assert_allclose(jax.jvp(ours, (h,), (jnp.ones_like(h),))[1], 0.0, atol=1e-13)

    def second(norm_fn, h):
        return jnp.sum(jnp.sin(jax.jvp(norm_fn, (h,), (t,))[1]))

    np.testing.assert_allclose(jax.grad(second, 1)(ours, h), jax.grad(second, 1)(theirs, h), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="LayerNorm of shape"):
        layer_norm(norm, h[:, :5])


@pytest.mark.parametrize(
    "build",
    [
        lambda k: eqx.nn.MLP(3, 4, 8, depth=2, activation=jax.nn.gelu, key=k),
        lambda k: eqx.nn.MLP(3, 4, 8, depth=1, activation=jnp.tanh, final_activation=jax.nn.softplus, key=k),
        lambda k: eqx.nn.MLP(3, 4, 8, depth=0, key=k),
        lambda k: eqx.nn.MLP(3, 4, 8, depth=2, use_bias=False, use_final_bias=False, key=k),
        lambda k: eqx.nn.MLP("scalar", 4, 8, depth=1, key=k),  # falls back to vmap
        lambda k: eqx.nn.MLP(3, 4, 8, depth=1, activation=eqx.nn.PReLU(), key=k),  # an activation with weights: vmap
    ],
)
def test_row_major_mlp_is_the_vmapped_mlp(build, rng):
    mlp = build(jax.random.key(3))
    h = jnp.asarray(rng.normal(size=(2, 5) if mlp.in_size == "scalar" else (2, 5, 3)))
    expected = jax.vmap(jax.vmap(mlp))(h)
    np.testing.assert_allclose(mlp_rows(mlp, h), expected, rtol=1e-13, atol=1e-13)
    if mlp.in_size != "scalar":
        np.testing.assert_allclose(linear_rows(mlp.layers[0], h), jax.vmap(jax.vmap(mlp.layers[0]))(h), rtol=1e-13)
