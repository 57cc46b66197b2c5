"""The active solid (`physics.lattice`) and its closed forms (`physics.lattice_exact`): the Fourier
solution against a dense Lyapunov solve, the score-free identity, the athermal harmonic score
(`physics.athermal`) against the Fourier score, and the simulated chain against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl
import xarray as xr

from activeflow import io
from activeflow.analysis.lattice_fields import fields_dataset, summary
from activeflow.errors import InputFileError
from activeflow.models.registry import build_model, model_spec
from activeflow.numerics.integrators import advance
from activeflow.numerics.lattice_sampling import attributes
from activeflow.physics.athermal import harmonic_score_g, harmonic_v_g
from activeflow.physics.lattice import Lattice, lattice_side, make_lattice
from activeflow.physics.lattice_exact import LatticeExact
from activeflow.stages import lattice_fields, simulate_lattice

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


def test_simulated_snapshots_have_the_chain_s_own_epr(tmp_path):
    """The stage's snapshots (exact continuous start, Euler steps in float64) follow the Euler chain's law:
    the chain's exact score gives its closed-form Ṡ_tot on them within 4 standard errors, while the
    continuous law's score does not (Δt = 0.05 here puts them 30 % apart)."""
    params = dict(n_side=6, k=1.0, spacing=1.0, mu=1.0, v0=0.3, gamma=0.5, eps=0.0)
    sim = dict(dt=0.05, n_runs=400, t_equilibrate=10.0, n_snapshots=2, t_between=5.0)
    simulate_lattice.run(params, sim, 7, str(tmp_path / "samples.nc"))
    ds = io.read_netcdf(tmp_path / "samples.nc")
    assert ds.x.dtype == np.float64 and ds.x.shape == (800, 36, 2) and ds.attrs["dt"] == 0.05
    assert list(ds.run.values[:4]) == [0, 0, 1, 1]
    system = make_lattice(params)
    exact = LatticeExact(system)
    for dt, closed in ((0.05, exact.chain_epr_g(0.05)), (None, exact.epr_g())):
        s_g = exact.score(ds.x.values, ds.g.values, dt=dt)[1]
        per = system.gamma * np.sum((ds.g.values + s_g) ** 2, axis=(1, 2))
        se = per.std(ddof=1) / np.sqrt(per.size)
        if dt is None:
            assert abs(per.mean() - closed) > 10 * se
        else:
            assert abs(per.mean() - closed) < 4 * se


def test_fields_set_the_learned_score_beside_the_closed_forms():
    """An untrained imbalance score is s_g = −g: its v_g and Ṡ_tot vanish, its rms error is 1, and the
    exact columns are the closed forms (divergence, truth) and their sampled means (Ṡ_tot)."""
    system = Lattice(**(ATHERMAL | dict(n_side=8)))
    exact = LatticeExact(system)
    x, g = exact.sample(np.random.default_rng(1), 64)
    samples = xr.Dataset({"x": (("sample", "particle", "dim"), x), "g": (("sample", "particle", "dim"), g)},
                         attrs=attributes(system, 0.01))
    spec = model_spec("lattice", dict(n_side=8, k=1.0, spacing=1.0, mu=1.0, v0=0.025, gamma=1e-4, eps=0.0),
                      dict(n_neighbours=4, embed_dim=8, n_layers=1, n_heads=2, mlp_width=8, mlp_depth=1,
                           boltzmann_shift=True, inputs="force_imbalance"))
    model = build_model(spec, jax.random.key(0))
    ds = fields_dataset(model, samples, system, n_snapshots=32)
    np.testing.assert_allclose(ds.s_g, -ds.g, atol=1e-6)
    row = summary(ds, sigma=0.1, thresholds=dict(z_threshold=3.0, rel_tolerance=0.05, abs_tolerance=0.01,
                                                 invariant_tolerance=0.01))
    assert row["S_tot_learned"] < 1e-9 and row["S_tot_off"] and not row["trusted"]
    assert row["S_tot_exact"] == pytest.approx(8.0) and row["S_tot_score_free"] == pytest.approx(8.0)
    assert row["S_tot_chain"] == pytest.approx(exact.chain_epr_g(0.01) / 64)
    assert row["S_tot_denoising_optimum"] == pytest.approx(exact.smoothed_epr_g(0.1, 0.1) / 64)
    assert row["v_g_sq_rms_rel_error"] == pytest.approx(1.0, abs=1e-6)
    assert row["div_g_v_g_exact"] == pytest.approx(-system.gamma * (2 + exact.divergence_s_g()))
    per = ds.v_g_sq_exact.values.mean(axis=1) / system.gamma
    assert abs(per.mean() - 8.0) < 4 * per.std(ddof=1) / np.sqrt(per.size)


def test_the_stage_refuses_samples_of_another_solid(tmp_path):
    params = dict(n_side=6, k=1.0, spacing=1.0, mu=1.0, v0=0.3, gamma=0.5, eps=0.0)
    sim = dict(dt=0.05, n_runs=2, t_equilibrate=0.5, n_snapshots=1, t_between=0.5)
    simulate_lattice.run(params, sim, 0, str(tmp_path / "samples.nc"))
    network = dict(n_neighbours=4, embed_dim=8, n_layers=1, n_heads=2, mlp_width=8, mlp_depth=1,
                   boltzmann_shift=True, inputs="force_imbalance")
    other = params | dict(k=2.0)
    spec = model_spec("lattice", other, network)
    io.save_model(build_model(spec, jax.random.key(0)), spec, tmp_path / "m.eqx", tmp_path / "m.json")
    with pytest.raises(InputFileError, match="samples.nc: simulated for another system or parameters"):
        lattice_fields.run(str(tmp_path / "m.eqx"), str(tmp_path / "m.json"), str(tmp_path / "samples.nc"),
                           str(tmp_path / "f.nc"), str(tmp_path / "s.csv"), dict(system="lattice", parameters=other,
                                                                                network=network))
    assert not (tmp_path / "f.nc").exists()


def test_the_smoothing_figure_draws_each_learned_side_beside_the_closed_forms():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from activeflow.figures.lattice import athermal_smoothing

    rows = [pd.DataFrame([dict(n_side=n, dt=0.01, S_tot_learned=v, S_tot_learned_stderr=0.05)])
            for n, v in ((16, 7.7), (8, 7.6))]
    fig = athermal_smoothing(rows, mu=1.0, k=1.0, v0=0.025, gamma=1e-4, sigma=0.1, dt=0.01, n_side=8)
    panel = fig.axes[1]
    points = [c for c in panel.containers if c.lines[0].get_marker() == "o"]
    assert [c.get_label() for c in points] == ["learned, 8×8 (trained)", "learned, 16×16"]
    assert [float(c.lines[0].get_ydata()[0]) for c in points] == [7.6, 7.7]


@pytest.mark.parametrize("dt", [None, 0.05])
def test_the_divergence_of_s_g_is_the_trace_of_the_score_s_g_block(dt):
    """∇_{g^i}·s_g^i of the continuous law and of the Euler chain's (a constant) against the score's own
    change under a shift of one particle's g (the score is linear, so the difference is exact)."""
    system = Lattice(mu=1.0, v0=0.3, gamma=0.5, eps=0.0, k=1.0, n_side=5)
    exact = LatticeExact(system)
    x, g = exact.sample(np.random.default_rng(2), 1)
    h, i, trace = 0.1, 7, 0.0
    for a in range(2):
        shifted = g.copy()
        shifted[0, i, a] += h
        trace += (exact.score(x, shifted, dt=dt)[1] - exact.score(x, g, dt=dt)[1])[0, i, a] / h
    assert trace == pytest.approx(exact.divergence_s_g(dt=dt), rel=1e-9)
    if dt is not None:
        assert exact.divergence_s_g(dt=dt) != pytest.approx(exact.divergence_s_g(), rel=1e-3)
