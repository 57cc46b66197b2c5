"""Linear-feature scores: exact divergences, equivariance, the linear system's exact score in their span,
the closed-form fit, and the Pythagoras identity Ṡ_tot(ŝ) = Ṡ_tot(s*) − ε E|s* − ŝ|² that makes the gap
of a learned Ṡ_tot to its reference a measure of the score's error."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.models.features import LinearFeatureScore, PairFeatures, fit_linear_features
from activeflow.models.score_model import ScoreModel
from activeflow.numerics.divergence import score_and_divergence
from activeflow.physics.linear import exact
from activeflow.physics.systems import Linear, Trap

TRAP = Trap(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=5, dim=2)


def trap_snapshot(seed=0):
    rng = np.random.default_rng(seed)
    # disks that overlap a little, as in a dense trap
    x = np.array([[0.0, 0.0], [1.8, 0.2], [-0.3, 1.9], [1.5, 1.9], [-1.9, -0.4]]) + 0.1 * rng.normal(size=(5, 2))
    return jnp.asarray(x), jnp.asarray(rng.normal(size=(5, 2)))


@pytest.mark.parametrize("forces, products", [(False, False), (True, True)])
def test_divergences_are_the_traces_of_the_particle_blocks_of_the_jacobian(forces, products):
    features = PairFeatures.for_system(TRAP, 2, 1.4, 2.6, forces=forces, products=products)
    x, g = trap_snapshot()
    div_x, div_g = features.divergences(x, g)
    jac_x = jax.jacfwd(features, 0)(x, g)  # (N, K, d, N, d): every feature of every particle
    jac_g = jax.jacfwd(features, 1)(x, g)
    np.testing.assert_allclose(div_x, jnp.einsum("ikaia->ik", jac_x), atol=1e-10)
    np.testing.assert_allclose(div_g, jnp.einsum("ikaia->ik", jac_g), atol=1e-10)
    # and against central finite differences, for one particle and feature
    name = "force:e(e.F_other)*z1" if products else "gauss1:e(e.g_other)"  # through the neighbours' forces
    i, k, h = 2, features.names().index(name), 1e-6
    fd = sum((features(x.at[i, c].add(h), g)[i, k, c] - features(x.at[i, c].add(-h), g)[i, k, c]) / (2 * h)
             for c in range(2))
    assert float(div_x[i, k]) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)
    assert float(jnp.abs(div_x).max()) > 0.1  # the check above is not of zeros


def test_features_turn_with_the_snapshot_and_follow_the_particles():
    features = PairFeatures.for_system(TRAP, 3, 1.4, 2.6, forces=True, products=True)
    x, g = trap_snapshot(1)
    c, s = np.cos(0.7), np.sin(0.7)
    rot = jnp.asarray([[c, -s], [s, c]])
    np.testing.assert_allclose(features(x @ rot.T, g @ rot.T), features(x, g) @ rot.T, atol=1e-12)
    perm = jnp.asarray([3, 0, 4, 1, 2])
    np.testing.assert_allclose(features(x[perm], g[perm]), features(x, g)[perm], atol=1e-12)


def test_the_prior_divergence_is_exact():
    features = PairFeatures.for_system(TRAP, 2, 1.5, 2.5)
    rng = np.random.default_rng(3)
    prior = LinearFeatureScore(features, *(jnp.asarray(rng.normal(size=features.n_features)) for _ in range(2)))
    x, g = trap_snapshot(2)
    _, _, ref_x, ref_g = score_and_divergence(prior, x, g)
    div_x, div_g = prior.divergence(x, g)
    np.testing.assert_allclose(div_x, ref_x, atol=1e-10)
    np.testing.assert_allclose(div_g, ref_g, atol=1e-10)


def linear_map(score, n, d):
    """The matrix of a linear score r ↦ s(r), r = (x.ravel(), g.ravel())."""
    def flat(r):
        s_x, s_g = score(r[: n * d].reshape(n, d), r[n * d :].reshape(n, d))
        return jnp.concatenate([s_x.ravel(), s_g.ravel()])

    return np.asarray(jax.jacfwd(flat)(jnp.zeros(2 * n * d)))


def test_the_linear_systems_exact_score_lies_in_the_span_of_x_g_and_their_sums(linear):
    """By permutation symmetry of the springs, s_x^i and s_g^i are combinations of x^i, g^i, Σx, Σg."""
    ex = exact(linear)
    features = PairFeatures.for_system(linear, 0, 1.0, 2.0)
    assert features.names() == ["x", "g", "x_sum", "g_sum"]
    n, d = linear.n_particles, linear.dim
    basis = np.stack([linear_map(lambda a, b, k=k: (features(a, b)[:, k], features(a, b)[:, k]), n, d)[: n * d]
                      for k in range(4)])  # (K, nd, 2nd): feature k as a matrix on r
    target = -ex.precision  # s = −Σ⁻¹ r
    for block in (slice(0, n * d), slice(n * d, 2 * n * d)):
        coef, *_ = np.linalg.lstsq(basis.reshape(4, -1).T, target[block].ravel(), rcond=None)
        np.testing.assert_allclose(np.tensordot(coef, basis, 1), target[block], atol=1e-10)


def test_the_closed_form_fit_recovers_the_linear_score_from_exact_samples(linear, rng):
    ex = exact(linear)
    x, g = ex.sample(rng, 20000)
    prior, report = fit_linear_features(PairFeatures.for_system(linear, 0, 1.0, 2.0), x, g)
    assert (report["ridge"], report["towards_anchor"]) in report["cv_losses"] and report["n_features"] == 4
    xt, gt = ex.sample(rng, 2000)
    learned = np.concatenate([np.asarray(a).reshape(2000, -1) for a in jax.vmap(prior)(jnp.asarray(xt),
                                                                                    jnp.asarray(gt))], 1)
    truth = np.concatenate([a.reshape(2000, -1) for a in ex.score(xt, gt)], 1)
    assert np.linalg.norm(learned - truth) / np.linalg.norm(truth) < 0.02


def test_a_ridge_towards_the_boltzmann_score_keeps_the_exact_score_at_v0_0(rng):
    """At v0 = 0 the Boltzmann score is exact and lies in the feature span; from few snapshots a fit pulled
    towards zero fits noise, while cross-validation picks the pull towards the anchor and stays close."""
    system = Linear(mu=1.0, v0=0.0, gamma=0.3, eps=0.3, trap=1.0, spring=0.6, n_particles=3, dim=2)
    ex = exact(system)
    x, g = ex.sample(rng, 40)
    features = PairFeatures.for_system(system, 0, 1.0, 2.0)
    xt, gt = ex.sample(rng, 2000)
    truth = np.concatenate([a.reshape(2000, -1) for a in ex.score(xt, gt)], 1)

    def error(prior):
        learned = np.concatenate([np.asarray(a).reshape(2000, -1)
                                  for a in jax.vmap(prior)(jnp.asarray(xt), jnp.asarray(gt))], 1)
        return np.linalg.norm(learned - truth) / np.linalg.norm(truth)

    anchored, report = fit_linear_features(features, x, g, anchor=system.boltzmann_score)
    free, free_report = fit_linear_features(features, x, g)
    assert report["towards_anchor"] and not free_report["towards_anchor"]
    assert min(report["cv_losses"].values()) < min(free_report["cv_losses"].values())
    assert error(anchored) < 0.5 * error(free), (error(anchored), error(free))


def test_fit_names_a_periodic_system():
    from activeflow.physics.systems import Ring

    with pytest.raises(ValueError, match="open space"):
        PairFeatures.for_system(Ring(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, length=16.0), 0, 1, 2)


def test_learned_epr_falls_short_of_the_truth_by_eps_times_the_mean_squared_score_error():
    """With D = εI and a linear class V that contains D⁻¹b but not s*, the score-matching optimum ŝ is
    the L²(ρ) projection of s* on V, so Ṡ_tot(ŝ) = Ṡ_tot(s*) − ε E|s* − ŝ|². Exact Gaussian moments."""
    system = Linear(mu=1.0, v0=0.8, gamma=0.3, eps=0.3, trap=1.0, spring=0.6, n_particles=3, dim=2)
    ex = exact(system)
    n, d = system.n_particles, system.dim
    features = PairFeatures.for_system(system, 0, 1.0, 2.0, single=("x", "g", "x_sum"))  # no Σg: V ∌ s*
    mats = [linear_map(lambda a, b, k=k: (features(a, b)[:, k], features(a, b)[:, k]), n, d)[: n * d]
            for k in range(features.n_features)]  # feature k: φ_k = A_k r, shape (nd, 2nd)
    cov = ex.covariance
    gram = np.array([[np.trace(a.T @ b @ cov) for b in mats] for a in mats])
    h_x = np.array([np.trace(a[:, : n * d]) for a in mats])  # E ∇_x·φ_k (constant)
    h_g = np.array([np.trace(a[:, n * d :]) for a in mats])
    theta_x, theta_g = -np.linalg.solve(gram, h_x), -np.linalg.solve(gram, h_g)
    S_hat = np.vstack([np.tensordot(theta_x, mats, 1), np.tensordot(theta_g, mats, 1)])  # ŝ = S_hat r
    # D⁻¹b is in V: b = M r, and M/ε has the form of S_hat for some θ (least squares residual 0)
    A = np.stack([np.vstack([m, np.zeros_like(m)]) for m in mats] + [np.vstack([np.zeros_like(m), m]) for m in mats])
    coef, *_ = np.linalg.lstsq(A.reshape(len(A), -1).T, (ex.drift_matrix / system.eps).ravel(), rcond=None)
    np.testing.assert_allclose(np.tensordot(coef, A, 1), ex.drift_matrix / system.eps, atol=1e-10)

    def epr(score_matrix):
        V = ex.drift_matrix - ex.diffusion @ score_matrix
        return float(np.trace(V.T @ V @ cov)) / system.eps

    error = S_hat + ex.precision  # ŝ − s* as a matrix
    mse = float(np.trace(error @ cov @ error.T))
    assert mse > 0.1  # V really misses part of s* (E|s*|² = tr Σ⁻¹ = 50 here)
    assert epr(S_hat) == pytest.approx(ex.epr_total() - system.eps * mse, rel=1e-10)
    assert epr(-ex.precision) == pytest.approx(ex.epr_total(), rel=1e-10)


@pytest.mark.parametrize("kind", ["transformer", "gated_features"])
def test_a_model_with_a_prior_gives_the_divergence_of_the_whole_model(kind):
    """`ScoreModel.fields` (the prior's local divergence added to the network's, or a local network and
    prior together particle by particle) equals differentiating the whole model."""
    from activeflow.models.registry import build_model, model_spec

    params = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=5, dim=2)
    prior = dict(n_radial=2, r_min=1.5, r_max=2.5, forces=True, products=False)
    network = dict(kind=kind, boltzmann_shift=True, prior=prior) | (
        dict(width=8, depth=1) if kind == "gated_features"
        else dict(embed_dim=8, n_layers=1, n_heads=2, mlp_width=8, mlp_depth=1))
    model = build_model(model_spec("trap", params, network), jax.random.key(0))
    rng = np.random.default_rng(4)
    model = jax.tree.map(lambda a: a + 0.1 * rng.normal(size=a.shape) if eqx.is_inexact_array(a) else a, model)
    assert model.has_fields
    x, g = trap_snapshot(5)
    whole = lambda a, b: ScoreModel.__call__(model, a, b)  # noqa: E731  (no `fields`: differentiated as a whole)
    for fast, slow in zip(model.fields(x, g), score_and_divergence(whole, x, g)):
        np.testing.assert_allclose(fast, slow, atol=1e-9)


def test_the_gated_network_turns_and_permutes_with_the_particles():
    from activeflow.models.features import GatedFeatureNet

    net = GatedFeatureNet(PairFeatures.for_system(TRAP, 2, 1.5, 2.5, forces=True), 8, 1, key=jax.random.key(1))
    net = eqx.tree_at(lambda n: n.gate.layers[-1].weight, net, jnp.ones_like(net.gate.layers[-1].weight) * 0.01)
    x, g = trap_snapshot(6)
    c, s = np.cos(1.1), np.sin(1.1)
    rot = jnp.asarray([[c, -s], [s, c]])
    for a, b in zip(net(x @ rot.T, g @ rot.T), net(x, g)):
        np.testing.assert_allclose(a, b @ rot.T, atol=1e-10)
    perm = jnp.asarray([4, 2, 0, 3, 1])
    for a, b in zip(net(x[perm], g[perm]), net(x, g)):
        np.testing.assert_allclose(a, b[perm], atol=1e-10)
