"""Closed forms of the linear system, and the library's generic code evaluated on its exact score."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.analysis.epr import epr_dataset
from activeflow.numerics import integrators, sampling
from activeflow.numerics.flow import flow_fields
from activeflow.physics.linear import active_work_epr, exact, scheme_covariance, stein_epr
from activeflow.physics.systems import Linear
from activeflow.training.losses import composite_loss


def test_lyapunov_solution(linear):
    ex = exact(linear)
    M, D, S = ex.drift_matrix, ex.diffusion, ex.covariance
    np.testing.assert_allclose(M @ S + S @ M.T + 2 * D, 0, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(S) > 0)


def test_drift_matrix_matches_drift(linear, rng):
    M = exact(linear).drift_matrix
    x, g = rng.normal(size=(2, 3, 2))
    b_x, b_g = linear.drift(jnp.asarray(x), jnp.asarray(g))
    np.testing.assert_allclose(M @ np.r_[x.ravel(), g.ravel()], np.r_[np.ravel(b_x), np.ravel(b_g)], atol=1e-12)


def test_exact_score_has_zero_fpe_residual_pointwise(linear, rng):
    ex = exact(linear)
    for x, g in zip(*(rng.normal(size=(2, 5, 3, 2)))):
        f = flow_fields(ex.score_fn(), linear, jnp.asarray(x), jnp.asarray(g))
        residual = jnp.sum(f.div_v_x + f.div_v_g) + jnp.sum(f.v_x * f.s_x) + jnp.sum(f.v_g * f.s_g)
        assert abs(float(residual)) < 1e-9
        # ∇·v is the constant tr V = 0, and per particle it equals the closed-form block traces
        div_x, div_g = ex.divergence_parts()
        np.testing.assert_allclose(f.div_v_x, div_x, atol=1e-10)
        np.testing.assert_allclose(f.div_v_g, div_g, atol=1e-10)
    assert abs(np.trace(ex.velocity_matrix)) < 1e-10


def test_two_closed_forms_of_the_total_epr_agree(linear):
    ex = exact(linear)
    total = ex.epr_total()
    assert total > 0.1  # far from equilibrium
    assert stein_epr(linear, ex.covariance) == pytest.approx(total, rel=1e-9)
    assert active_work_epr(linear, ex.covariance) == pytest.approx(total, rel=1e-9)
    assert sum(ex.epr_parts()) == pytest.approx(total, rel=1e-12)


def test_epr_at_v0_zero_vanishes():
    eq = Linear(mu=1.0, v0=0.0, gamma=0.5, eps=0.2, trap=1.0, spring=0.3, n_particles=2, dim=2)
    ex = exact(eq)
    assert abs(ex.epr_total()) < 1e-12
    np.testing.assert_allclose(ex.velocity_matrix, 0, atol=1e-12)


def test_monte_carlo_epr_and_score_matching_match_closed_forms(linear, rng):
    ex = exact(linear)
    x, g = ex.sample(rng, 20000)
    ds = epr_dataset(ex.score_fn(), linear, x, g)
    per_sample = ds.epr_total.sum("particle").values
    se = per_sample.std() / np.sqrt(per_sample.size)
    assert abs(per_sample.mean() - ex.epr_total()) < 4 * se
    # E[∇·v] = 0 for each part's sum, as in the closed forms
    div_x, div_g = ex.divergence_parts()
    np.testing.assert_allclose(ds.div_x_v_x.values[0], div_x, atol=1e-8)
    np.testing.assert_allclose(ds.div_g_v_g.values[0], div_g, atol=1e-8)

    terms = composite_loss(ex.score_fn(), linear, jnp.asarray(x), jnp.asarray(g), 1.0, 1.0)
    # loss (22) at the optimum equals −E|s|² = −tr Σ⁻¹; its MC error is set by the |s|² spread
    s_x, s_g = ex.score(x, g)
    sq = np.sum(s_x.reshape(len(x), -1) ** 2, 1) + np.sum(s_g.reshape(len(x), -1) ** 2, 1)
    se = sq.std() / np.sqrt(len(sq))
    assert abs(float(terms.score_matching) + ex.mean_squared_score()) < 4 * se
    assert float(terms.fpe_residual) < 1e-16


def _covariance_standard_error(S: np.ndarray, n: int) -> np.ndarray:
    """Standard error of sample covariance entries of a Gaussian: sqrt((Σii Σjj + Σij²)/n)."""
    return np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n)


def _simulated_covariance(system, dt, integrator, n=8000, t_burn_in=8.0):
    s = sampling.sample(system, jax.random.key(3), n, t_burn_in, 1, 1.0, dt, integrator)
    r = np.concatenate([s["x"].reshape(n, -1), s["g"].reshape(n, -1)], 1)
    return np.cov(r.T)


SMALL = Linear(mu=1.0, v0=0.6, gamma=1.0, eps=0.3, trap=1.0, spring=0.5, n_particles=2, dim=1)


@pytest.mark.parametrize("integrator", integrators.INTEGRATORS)
def test_small_step_samples_reproduce_lyapunov_covariance(integrator):
    S = exact(SMALL).covariance
    emp = _simulated_covariance(SMALL, 2e-3, integrator)
    z = np.abs(emp - S) / _covariance_standard_error(S, 8000)
    assert np.all(z < 4.5), z.max()


@pytest.mark.parametrize("integrator", integrators.INTEGRATORS)
def test_large_step_samples_follow_the_schemes_discrete_law(integrator):
    # at Δt = 0.25 each scheme's own stationary law is visibly off the continuous one; the simulator
    # must reproduce the discrete-Lyapunov prediction for exactly the scheme it implements
    dt, n = 0.25, 40000
    predicted = scheme_covariance(SMALL, dt, integrator)
    emp = _simulated_covariance(SMALL, dt, integrator, n=n, t_burn_in=15.0)
    z = np.abs(emp - predicted) / _covariance_standard_error(predicted, n)
    assert np.all(z < 4.5), z.max()
    other = scheme_covariance(SMALL, dt, [i for i in integrators.INTEGRATORS if i != integrator][0])
    assert np.max(np.abs(emp - other) / _covariance_standard_error(other, n)) > 6


def test_scheme_bias_vanishes_with_the_step(linear):
    S = exact(linear).covariance
    for integrator in integrators.INTEGRATORS:
        errors = [np.linalg.norm(scheme_covariance(linear, dt, integrator) - S) for dt in (1e-2, 1e-3)]
        assert errors[1] < errors[0] / 8  # at least first order
    # Leimkuhler–Matthews is the more accurate of the two (the default)
    lm, em = (np.linalg.norm(scheme_covariance(linear, 1e-2, i) - S) for i in ("leimkuhler_matthews", "euler_maruyama"))
    assert lm < em
