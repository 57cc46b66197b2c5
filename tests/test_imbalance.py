"""The MIPS score fed the force imbalance (`models.imbalance`): its exact divergence against finite
differences, its starting point s_g = −g, permutation equivariance, and score matching in g reaching the
exact Ṡ_tot of the active solid (`physics.lattice_exact`); with the soft disks' contact terms, the terms
against the Hessian of the full force, and the same divergence and equivariance checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.analysis.mips_fields import particle_fields
from activeflow.models.imbalance import ImbalanceScore, SoftDiskContacts
from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.models.registry import build_model, imbalance_width, model_spec
from activeflow.physics.lattice import Lattice
from activeflow.physics.lattice_exact import LatticeExact
from activeflow.physics.mips import MIPS
from activeflow.physics.neighbours import k_nearest, nearest_search
from activeflow.training.denoising import fit_denoising
from finite_differences import block_trace

SOLID = dict(mu=1.0, v0=0.025, gamma=1e-4, eps=0.0, k=1.0)
K = 12


def solid_samples(n_side: int, n: int, seed: int):
    system = Lattice(**SOLID, n_side=n_side)
    x, g = LatticeExact(system).sample(np.random.default_rng(seed), n)
    force = np.asarray(jax.jit(jax.vmap(system.force))(jnp.asarray(x)))
    return system, jnp.asarray(x), jnp.asarray(g), jnp.asarray(force)


def model(key: int, zero_output: bool) -> ImbalanceScore:
    net = LocalTransformerScore.build(2, 16, 2, 2, 32, 1, K, zero_output=zero_output, key=jax.random.key(key))
    return ImbalanceScore(net, SOLID["mu"], SOLID["v0"], imbalance_width(SOLID))


def test_divergence_is_the_trace_of_the_g_jacobian_by_finite_differences():
    system, x, g, force = solid_samples(4, 1, 0)
    m = model(1, zero_output=False)
    search = nearest_search(x, system.box, K)
    idx, _ = k_nearest(search, x[0], K)
    s, div = m.score_and_divergence(x[0], g[0], idx, system.box, force=force[0])
    for i in (0, 5, 11):
        trace = block_trace(lambda gg: m.score_and_divergence(x[0], gg, idx, system.box, force=force[0])[0][i],
                            g[0], i, 1e-6)
        assert float(div[i]) == pytest.approx(trace, rel=1e-5)
    assert float(jnp.abs(s + g[0]).max()) > 1.0  # a non-trivial network: the test can fail
    # the training path (a batch of particles, unchunked) gives the same values
    some = jnp.array([3, 0, 14])
    s_batch, div_batch = m.at(x[0], g[0], force[0], some, idx[some], system.box)
    np.testing.assert_allclose(s_batch, s[some], rtol=1e-12)
    np.testing.assert_allclose(div_batch, div[some], rtol=1e-12)


def test_untrained_score_is_minus_g_and_equivariant_under_permutations():
    system, x, g, force = solid_samples(4, 1, 1)
    search = nearest_search(x, system.box, K)
    idx, _ = k_nearest(search, x[0], K)
    s, div = model(2, zero_output=True).score_and_divergence(x[0], g[0], idx, system.box, force=force[0])
    np.testing.assert_allclose(s, -g[0], rtol=1e-12)
    np.testing.assert_allclose(div, -2.0, rtol=1e-12)
    m = model(3, zero_output=False)
    perm = np.random.default_rng(0).permutation(16)
    s, div = m.score_and_divergence(x[0], g[0], idx, system.box, force=force[0])
    idx_p, _ = k_nearest(search, x[0][perm], K)
    s_p, div_p = m.score_and_divergence(x[0][perm], g[0][perm], idx_p, system.box, force=force[0][perm])
    np.testing.assert_allclose(s_p, s[perm], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(div_p, div[perm], rtol=1e-9)


def test_spec_builds_it_and_fields_need_the_force():
    parameters = dict(SOLID, a=1.0, beta=7.5, phi=0.5, n_particles=64)
    network = dict(n_neighbours=K, embed_dim=16, n_layers=2, n_heads=2, mlp_width=32, mlp_depth=1,
                   boltzmann_shift=True, inputs="force_imbalance")
    m = build_model(model_spec("mips", parameters, network), jax.random.key(0))
    assert isinstance(m, ImbalanceScore) and m.eta == pytest.approx(0.01) and not m.network.shift
    with pytest.raises(ValueError, match="boltzmann_shift"):
        model_spec("mips", parameters, network | dict(boltzmann_shift=False))
    system, x, g, _ = solid_samples(4, 1, 2)
    with pytest.raises(ValueError, match="force"):
        particle_fields(m, np.asarray(x[0]), np.asarray(g[0]), system.box, SOLID["gamma"])


def test_score_matching_learns_the_exact_epr_of_the_active_solid():
    """16×16 solid, 64 exact snapshots: 600 steps (batch 128) of score matching in g take Ṡ_tot per
    particle from 0 (s_g = −g) to within 20 % of the exact score's on 4 held-out snapshots (−15 % seen; the
    exact score gives 8.3 there, the closed form 8); the paper's denoising loss at σ = 0.01 has its optimum at 4·10⁻⁴
    (`smoothed_epr_g`). In float32, as the workflow trains."""
    system, x, g, force = solid_samples(16, 68, 3)
    held_out = range(64, 68)
    _, exact_s_g = LatticeExact(system).score(np.asarray(x[64:]), np.asarray(g[64:]))
    exact = SOLID["gamma"] * np.sum((np.asarray(g[64:]) + exact_s_g) ** 2, -1).mean(-1)  # per snapshot
    with jax.enable_x64(False):
        x, g, force = (jnp.asarray(a, jnp.float32) for a in (x, g, force))
        net = LocalTransformerScore.build(2, 32, 2, 2, 64, 1, K, zero_output=True, key=jax.random.key(4))
        m = ImbalanceScore(net, SOLID["mu"], SOLID["v0"], imbalance_width(SOLID))
        search = nearest_search(x, system.box, K)
        trained, _ = fit_denoising(m, x[:64], g[:64], system.box, sigma=0.01, steps=600, batch_size=128,
                                   learning_rate=3e-3, warmup_steps=50, key=jax.random.key(5), ema_decay=0.99,
                                   optimizer="adam", search=search, log_every=150, objective="score_matching",
                                   force=force[:64])
        epr = [particle_fields(trained, np.asarray(x[s]), np.asarray(g[s]), system.box, SOLID["gamma"], search,
                               force=np.asarray(force[s]))["v_g_sq"].mean() / SOLID["gamma"] for s in held_out]
    assert LatticeExact(system).particle_epr_g() == pytest.approx(8.0)
    assert LatticeExact(system).smoothed_epr_g(0.01, 0.01) / system.n_particles < 1e-3
    assert exact.mean() == pytest.approx(8.0, rel=0.05)  # the exact score on these snapshots
    assert np.mean(epr) == pytest.approx(exact.mean(), rel=0.2), (epr, exact)
    with pytest.raises(ValueError, match="score_matching"):
        fit_denoising(m, x[:12], g[:12], system.box, sigma=0.01, steps=2, batch_size=8, learning_rate=1e-3,
                      warmup_steps=0, key=jax.random.key(5), search=search, force=force[:12])


DISKS = dict(a=1.0, k=1.0, beta=7.5, mu=1.0, v0=0.025, gamma=1e-4, eps=0.0)


def dense_disks(n: int, seed: int, force_tolerance: float = 1e-6):
    """A dense MIPS snapshot (φ = 0.9, random positions: many overlaps) with g and the force."""
    system = MIPS(**DISKS, phi=0.9, n_particles=n, force_tolerance=force_tolerance)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(-system.box / 2, system.box / 2, (n, 2)))
    g = jnp.asarray(rng.normal(size=(n, 2)))
    return system, x, g, jax.jit(system.force)(x)


def contact_model(key: int, n_neighbours: int, zero_output: bool = False, v0: float = DISKS["v0"]) -> ImbalanceScore:
    net = LocalTransformerScore.build(2, 16, 2, 2, 32, 1, n_neighbours, zero_output=zero_output, g_features=4,
                                      key=jax.random.key(key))
    return ImbalanceScore(net, DISKS["mu"], v0, imbalance_width(DISKS), SoftDiskContacts(1.0, 1.0, 7.5))


def test_contact_terms_sum_to_the_hessian_of_the_force_along_the_imbalance():
    # A force cut off at 10⁻¹³ (5.6 diameters) stands for the uncut one the terms use; K = N − 1.
    system, x, g, force = dense_disks(40, 0, force_tolerance=1e-13)
    m = contact_model(0, 39)
    u = m.inputs(force, g)
    idx, _ = k_nearest(nearest_search(x[None], system.box, 39), x, 39)
    terms = jax.jit(jax.vmap(lambda i, nb: m.contacts.terms(*m.network.tokens(x, u, i, nb, system.box))))(
        jnp.arange(40), idx)
    _, force_along_u = jax.jit(lambda x, u: jax.jvp(system.force, (x,), (u,)))(x, u)  # = −H u
    np.testing.assert_allclose(terms[:, 0], force_along_u / DISKS["k"], rtol=1e-9, atol=1e-9 * float(
        jnp.abs(force_along_u).max()))
    np.testing.assert_allclose(terms[:, 0], terms[:, 1:].sum(1), rtol=1e-12)
    assert float(jnp.abs(force_along_u).max()) > 1.0  # overlapping disks: the terms are not all zero


def test_contact_score_divergence_by_finite_differences_and_equivariance():
    # v0 = 1 keeps the imbalance of these random overlaps at |u| ~ 10² (10⁴ at the paper's v0). The paths
    # below agree to round-off times 1/η² = 10⁴ (the divergence is (∂N/∂u)/η²), hence rtol 10⁻⁷.
    system, x, g, force = dense_disks(20, 1)
    m = contact_model(1, 8, v0=1.0)
    search = nearest_search(x[None], system.box, 8)
    idx, _ = k_nearest(search, x, 8)

    def fields(gg):  # u and the contact terms move with g; the force does not
        return m.score_and_divergence(x, gg, idx, system.box, force=force)

    s, div = fields(g)
    for i in (0, 7, 13):
        assert float(div[i]) == pytest.approx(block_trace(lambda gg: fields(gg)[0][i], g, i, 1e-6), rel=1e-5)
    assert float(jnp.abs(s + g).max()) > 1.0  # a non-trivial network: the test can fail
    some = jnp.array([3, 0, 14])
    s_batch, div_batch = m.at(x, g, force, some, idx[some], system.box)
    np.testing.assert_allclose(s_batch, s[some], rtol=1e-7)
    np.testing.assert_allclose(div_batch, div[some], rtol=1e-7)
    perm = np.random.default_rng(0).permutation(20)
    idx_p, _ = k_nearest(search, x[perm], 8)
    s_p, div_p = m.score_and_divergence(x[perm], g[perm], idx_p, system.box, force=force[perm])
    np.testing.assert_allclose(s_p, s[perm], rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(div_p, div[perm], rtol=1e-7)
    s0, div0 = contact_model(2, 8, zero_output=True, v0=1.0).score_and_divergence(x, g, idx, system.box, force=force)
    np.testing.assert_allclose(s0, -g, rtol=1e-12)
    np.testing.assert_allclose(div0, -2.0, rtol=1e-12)


def test_contact_inputs_need_the_soft_disks_and_a_network_of_four_inputs():
    parameters = dict(DISKS, phi=0.5, n_particles=64)
    network = dict(n_neighbours=K, embed_dim=16, n_layers=2, n_heads=2, mlp_width=32, mlp_depth=1,
                   boltzmann_shift=True, inputs="force_imbalance_contacts")
    m = build_model(model_spec("mips", parameters, network), jax.random.key(0))
    assert m.contacts == SoftDiskContacts(1.0, 1.0, 7.5) and m.network.network.embed_g.in_size == 4
    with pytest.raises(ValueError, match="pair force of the distance"):
        model_spec("lattice", dict(SOLID, n_side=8), network)
    with pytest.raises(ValueError, match="takes 2 inputs per token"):
        ImbalanceScore(model(0, False).network, 1.0, 0.025, 0.01, SoftDiskContacts(1.0, 1.0, 7.5))
