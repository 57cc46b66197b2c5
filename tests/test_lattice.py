"""The active solid (`physics.lattice`) and its closed forms (`physics.lattice_exact`): the Fourier
solution against a dense Lyapunov solve, the score-free identity, the athermal harmonic score
(`physics.athermal`) against the Fourier score, and the simulated chain against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

from activeflow.numerics.integrators import advance
from activeflow.physics.athermal import harmonic_score_g, harmonic_v_g
from activeflow.physics.lattice import Lattice, lattice_side
from activeflow.physics.lattice_exact import LatticeExact

ATHERMAL = dict(mu=1.0, v0=0.025, gamma=1e-4, eps=0.0, k=1.0, n_side=5)
THERMAL = dict(mu=0.7, v0=0.3, gamma=0.2, eps=0.05, k=1.3, n_side=4)


def dense_epr_g(system: Lattice, sigma_x=0.0, sigma_g=0.0, dt=None) -> float:
    """γE|g + s_g|² from a dense (continuous or discrete) Lyapunov solve in one coordinate, the
    translation mode projected out (its g-score is that of N(0, 1 + σ_g²), added by hand), times d."""
    n, k = system.n_side, system.k
    idx = np.arange(n * n).reshape(n, n)
    lap = 4 * np.eye(n * n)
    for axis in (0, 1):
        for shift in (1, -1):
            lap[idx.ravel(), np.roll(idx, shift, axis).ravel()] -= 1
    p = sl.null_space(np.ones((1, n * n)))
    m = p.shape[1]
    hp, eye, zero = p.T @ (k * lap) @ p, np.eye(m), np.zeros((m, m))
    drift = np.block([[-system.mu * hp, system.v0 * eye], [zero, -system.gamma * eye]])
    if dt is None:
        cov = sl.solve_continuous_lyapunov(drift, -2 * np.block([[system.eps * eye, zero], [zero, system.gamma * eye]]))
    else:
        rho = np.exp(-system.gamma * dt)
        step = np.block([[eye + dt * drift[:m, :m], dt * system.v0 * eye], [zero, rho * eye]])
        noise = np.block([[2 * system.eps * dt * eye, zero], [zero, (1 - rho**2) * eye]])
        cov = sl.solve_discrete_lyapunov(step, noise)
    precision = np.linalg.inv(cov + np.diag(np.r_[np.full(m, sigma_x**2), np.full(m, sigma_g**2)]))
    pick_g = np.hstack([zero, eye])
    w = pick_g - pick_g @ precision
    translation = (sigma_g**2 / (1 + sigma_g**2)) ** 2
    return float(system.gamma * system.dim * (np.trace(w @ cov @ w.T) + translation))


@pytest.mark.parametrize("params", [ATHERMAL, THERMAL], ids=["athermal", "thermal"])
def test_fourier_closed_forms_match_a_dense_lyapunov_solve(params):
    system = Lattice(**params)
    exact = LatticeExact(system)
    assert exact.epr_g() == pytest.approx(dense_epr_g(system), rel=1e-8)
    for sx, sg in [(0.1, 0.1), (0.01, 0.01), (0.0, 1e-3)]:
        assert exact.smoothed_epr_g(sx, sg) == pytest.approx(dense_epr_g(system, sx, sg), rel=1e-6, abs=1e-12)
    assert exact.chain_epr_g(0.1) == pytest.approx(dense_epr_g(system, dt=0.1), rel=1e-8)


@pytest.mark.parametrize("v0, gamma", [(0.025, 1e-4), (0.5, 0.3), (2.0, 5.0)])
def test_athermal_epr_is_d_z_mu_k_n_whatever_v0_and_gamma(v0, gamma):
    system = Lattice(**(ATHERMAL | dict(v0=v0, gamma=gamma, mu=0.6, k=1.7, n_side=6)))
    exact = LatticeExact(system)
    assert exact.epr_identity() == pytest.approx(2 * 4 * 0.6 * 1.7 * 36)
    assert exact.epr_total() == pytest.approx(exact.epr_identity(), rel=1e-8)


def test_the_thermal_total_adds_the_x_part():
    exact = LatticeExact(Lattice(**THERMAL))
    assert exact.epr_x() > 0 and exact.epr_total() == pytest.approx(exact.epr_g() + exact.epr_x())
    with pytest.raises(ValueError, match="eps > 0"):
        LatticeExact(Lattice(**ATHERMAL)).epr_x()


def test_force_is_minus_the_gradient_of_the_bond_energy_and_its_divergence_is_exact():
    system = Lattice(**(THERMAL | dict(n_side=3)))
    rng = np.random.default_rng(1)
    x = jnp.asarray(system.sites() + 0.2 * rng.normal(size=(9, 2)))

    def energy(x):
        grid = x.reshape(3, 3, 2)
        bonds = [grid - jnp.roll(grid, 1, axis) for axis in (0, 1)]
        return 0.5 * system.k * sum(jnp.sum(system.wrap(b) ** 2) for b in bonds)

    np.testing.assert_allclose(system.force(x), -jax.grad(energy)(x), rtol=1e-12)
    jac = jax.jacfwd(system.force)(x)  # (N, d, N, d)
    diag = np.einsum("ikik->i", np.asarray(jac))
    np.testing.assert_allclose(system.force_divergence(x), diag, rtol=1e-12)


def test_the_harmonic_score_is_the_exact_score_of_the_active_solid():
    system = Lattice(**ATHERMAL)
    exact = LatticeExact(system)
    x, g = exact.sample(np.random.default_rng(2), 3)
    _, s_g = exact.score(x, g)
    for xi, gi, si in zip(x, g, s_g):
        s, div = harmonic_score_g(system, jnp.asarray(xi), jnp.asarray(gi))
        np.testing.assert_allclose(s, si, rtol=1e-7, atol=1e-7 * np.abs(si).max())
        np.testing.assert_allclose(div, exact.divergence_s_g(), rtol=1e-9)
        v_g = harmonic_v_g(system, jnp.asarray(xi), jnp.asarray(gi))
        np.testing.assert_allclose(v_g, -system.gamma * (gi + si), rtol=1e-6, atol=1e-6 * np.abs(v_g).max())


def test_the_harmonic_score_refuses_a_thermal_system():
    system = Lattice(**THERMAL)
    with pytest.raises(ValueError, match="eps = 0"):
        harmonic_score_g(system, jnp.asarray(system.sites()), jnp.zeros((16, 2)))


def test_exact_samples_have_the_closed_form_epr():
    """The Fourier sampler draws the law whose EPR the closed forms give: the harmonic score's mean
    |v_g|²/γ over exact samples matches d·z·μ·k per particle within its standard error."""
    system = Lattice(**(ATHERMAL | dict(n_side=8)))
    exact = LatticeExact(system)
    x, g = exact.sample(np.random.default_rng(3), 200)
    per = np.array([float(jnp.mean(jnp.sum(harmonic_v_g(system, jnp.asarray(a), jnp.asarray(b)) ** 2, -1)))
                    for a, b in zip(x, g)]) / system.gamma
    assert abs(per.mean() - 8.0) < 4 * per.std(ddof=1) / np.sqrt(per.size)


def test_the_simulated_chain_has_the_closed_form_covariance():
    """Euler steps of x with the old g and exact OU steps of g (the MIPS integrator) reach the stationary
    covariance that `chain_covariance` gives (E|u|² summed over the confined modes, over replicas and
    times 5/γ apart), and at this step the continuous law's is many standard errors away. (v0 small enough
    that no bond stretches towards half the box, where the minimum image would tear the lattice.)"""
    system = Lattice(mu=1.0, v0=0.3, gamma=0.5, eps=0.0, k=1.0, n_side=4)
    exact, dt = LatticeExact(system), 0.2
    confined = exact.rates > 0
    chain = system.dim * exact.chain_covariance(dt).uu[confined].sum()
    continuous = system.dim * exact.covariance().uu[confined].sum()
    key = jax.random.key(0)
    x, g = system.initial_state(key, 2000)
    uu = []
    for i in range(5):
        x, g = advance(system, jax.random.fold_in(key, i), x, g, dt, 50, "euler_maruyama")
        u = np.asarray(system.displacements(x))
        uu.append(np.sum((u - u.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2)))
    uu = np.concatenate(uu[1:])
    se = uu.std() / np.sqrt(uu.size)
    assert abs(uu.mean() - chain) < 4 * se
    assert abs(uu.mean() - continuous) > 10 * se


def test_lattice_side_and_bad_parameters():
    assert lattice_side(64) == 8
    with pytest.raises(ValueError, match="N = n²"):
        lattice_side(60)
    with pytest.raises(ValueError, match="n_side"):
        Lattice(**(ATHERMAL | dict(n_side=2)))
