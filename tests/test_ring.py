"""The ring in displacement coordinates: Boltzmann score at v0 = 0, forces, divergences, periodicity."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.models.mlp import MLPScore
from activeflow.numerics.flow import flow_fields
from activeflow.physics.forces import soft_disk_force, soft_disk_force_divergence, softplus
from activeflow.physics.systems import Linear, Ring, Trap


def test_boltzmann_score_gives_zero_velocity_and_epr_at_v0_zero(ring):
    eq = dataclasses.replace(ring, v0=0.0)
    for xv in (-7.9, -2.3, -2.0, -0.5, 0.3, 1.9, 2.1, 5.0):
        x, g = jnp.array([[xv]]), jnp.array([[0.7]])
        f = flow_fields(eq.boltzmann_score, eq, x, g)
        np.testing.assert_allclose(f.v_x, 0, atol=1e-12)
        np.testing.assert_allclose(f.v_g, 0, atol=1e-12)
        np.testing.assert_allclose(f.div_v_x + f.div_v_g, 0, atol=1e-10)


def test_boltzmann_score_is_not_stationary_when_active(ring):
    # the same check must fail for v0 > 0, or the test above would prove nothing
    f = flow_fields(ring.boltzmann_score, ring, jnp.array([[2.2]]), jnp.array([[1.0]]))
    assert abs(float(f.v_x[0, 0])) > 0.1


def test_ring_diffusion_and_stationary_g(ring):
    assert (ring.Dx, ring.Dg) == (pytest.approx(0.2), pytest.approx(0.2))
    assert ring.stationary_g_std() == pytest.approx(np.sqrt(2.0))


def test_smoothed_force_values():
    a, k, beta = 1.0, 2.5, 7.5
    f = soft_disk_force(jnp.array([[2.0], [-2.0], [10.0]]), a, k, beta)
    assert float(f[0, 0]) == pytest.approx(k * np.log(2) / beta)
    assert float(f[1, 0]) == pytest.approx(-k * np.log(2) / beta)
    assert abs(float(f[2, 0])) < 1e-20
    assert float(softplus(jnp.array(100.0), beta)) == pytest.approx(100.0)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_force_divergence_matches_autodiff(d, rng):
    a, k, beta = 1.0, 2.5, 7.5
    for dx in rng.normal(scale=1.5, size=(10, d)):
        dx = jnp.asarray(dx)
        jac = jax.jacfwd(lambda y: soft_disk_force(y, a, k, beta))(dx)
        assert float(soft_disk_force_divergence(dx, a, k, beta)) == pytest.approx(float(jnp.trace(jac)), rel=1e-10, abs=1e-12)


def _drift_divergence_reference(system, x, g):
    n, d = x.shape
    jx = jax.jacfwd(lambda y: system.drift(y, g)[0])(x).reshape(n * d, n * d)
    jg = jax.jacfwd(lambda y: system.drift(x, y)[1])(g).reshape(n * d, n * d)
    return jnp.diagonal(jx).reshape(n, d).sum(-1), jnp.diagonal(jg).reshape(n, d).sum(-1)


@pytest.mark.parametrize(
    "system",
    [
        Ring(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, length=16.0),
        Linear(mu=0.7, v0=0.5, gamma=0.3, eps=0.1, trap=1.2, spring=0.4, n_particles=4, dim=2),
        Trap(a=1.0, k=2.5, beta=7.5, mu=0.7, v0=0.3, gamma=0.2, eps=0.1, trap=0.05, n_particles=5, dim=2),
    ],
    ids=["ring", "linear", "trap"],
)
def test_drift_divergence_matches_full_jacobian(system, rng):
    for _ in range(5):
        x = jnp.asarray(rng.normal(scale=1.5, size=(system.n_particles, system.dim)))
        g = jnp.asarray(rng.normal(size=(system.n_particles, system.dim)))
        ref_x, ref_g = _drift_divergence_reference(system, x, g)
        div_x, div_g = system.drift_divergence(x, g)
        np.testing.assert_allclose(div_x, ref_x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(div_g, ref_g, rtol=1e-10, atol=1e-12)


def test_ring_wraps_and_force_is_periodic(ring):
    x = jnp.array([[3.0]])
    np.testing.assert_allclose(ring.wrap(x + ring.length), x, atol=1e-12)
    np.testing.assert_allclose(ring.force(x + ring.length), ring.force(x), atol=1e-12)
    # x = 15.5 is the displacement −0.5 seen across the seam: the force pushes it further negative
    assert float(ring.force(jnp.array([[15.5]]))[0, 0]) < -1.0
    assert float(ring.force(jnp.array([[-15.5]]))[0, 0]) > 1.0


def test_periodic_mlp_is_periodic(ring):
    net = MLPScore(1, 1, width=16, depth=2, period=ring.length, key=jax.random.key(0))
    x, g = jnp.array([[1.234]]), jnp.array([[-0.4]])
    for shift in (ring.length, -3 * ring.length):
        a, b = net(x, g), net(x + shift, g)
        np.testing.assert_allclose(a[0], b[0], atol=1e-10)
        np.testing.assert_allclose(a[1], b[1], atol=1e-10)
