"""64 swimmers in a trap (§6.1): the force is −∇Φ of (27) with the smoothed pair potential, its
per-particle divergence, the Boltzmann score at v0 = 0, permutation symmetry, finite derivatives."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import spence as _spence

from activeflow.numerics.flow import flow_fields
from activeflow.physics.systems import Trap, make_system

TRAP = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05, n_particles=6, dim=2)


@pytest.fixture
def trap() -> Trap:
    return Trap(**TRAP)


def _positions(rng, system, scale=1.5):
    # scale 1.5 puts many pairs within 2a, where the repulsion acts
    return jnp.asarray(rng.normal(scale=scale, size=(system.n_particles, system.dim)))


@jax.custom_jvp
def spence(z):
    return _spence(z)


# jax 0.10.2 differentiates spence to NaN on (1, 2]; supply the textbook derivative log z / (1 − z).
spence.defjvp(lambda primals, tangents: (spence(primals[0]), jnp.log(primals[0]) / (1 - primals[0]) * tangents[0]))


def potential(system: Trap, x):
    """Φ (27) written independently: A/2 Σ|x^i|² + Σ_{i<j} V(|x^i − x^j|), with the smoothed pair
    potential V(r) = k ∫_r^∞ softplus_β(2a − s) ds = −k Li₂(−e^{β(2a−r)})/β², Li₂(z) = spence(1 − z)."""
    i, j = jnp.triu_indices(x.shape[0], k=1)
    r = jnp.linalg.norm(x[i] - x[j], axis=-1)
    u = jnp.exp(system.beta * (2 * system.a - r))
    # spence′ is 0/0 at 1 (u → 0, far pairs): there use Li₂(−u) = −u + u²/4 + O(u³)
    small = u < 1e-6
    li2 = jnp.where(small, -u + u**2 / 4, spence(1 + jnp.where(small, 1.0, u)))
    pair = -system.k * li2 / system.beta**2
    return 0.5 * system.trap * jnp.sum(x**2) + jnp.sum(pair)


def test_force_is_minus_gradient_of_potential(trap, rng):
    grad = jax.jit(jax.grad(lambda y: potential(trap, y)))
    for _ in range(5):
        x = _positions(rng, trap)
        np.testing.assert_allclose(trap.force(x), -grad(x), rtol=1e-9, atol=1e-12)


def test_force_divergence_is_minus_laplacian_block(trap, rng):
    x = _positions(rng, trap)
    n, d = x.shape
    hess = jax.jit(jax.hessian(lambda y: potential(trap, y)))(x).reshape(n * d, n * d)
    blocks = -jnp.diagonal(hess).reshape(n, d).sum(-1)
    np.testing.assert_allclose(trap.force_divergence(x), blocks, rtol=1e-9, atol=1e-12)


def test_far_apart_particles_feel_only_the_trap(trap):
    x = jnp.array([[0.0, 0.0], [30.0, 0.0], [0.0, 30.0], [-30.0, 0.0], [0.0, -30.0], [30.0, 30.0]])
    np.testing.assert_allclose(trap.force(x), -trap.trap * x, atol=1e-12)
    np.testing.assert_allclose(trap.force_divergence(x), -trap.trap * 2, atol=1e-12)


def test_derivatives_are_finite_despite_the_self_pair(trap, rng):
    x = _positions(rng, trap)
    assert np.isfinite(jax.jit(jax.jacfwd(trap.force))(x)).all()
    assert np.isfinite(jax.jit(jax.jacrev(trap.force))(x)).all()
    assert np.isfinite(jax.jit(jax.grad(lambda y: trap.force_divergence(y).sum()))(x)).all()


def test_permuting_particles_permutes_the_force(trap, rng):
    x = _positions(rng, trap)
    perm = jnp.asarray(rng.permutation(trap.n_particles))
    np.testing.assert_allclose(trap.force(x[perm]), trap.force(x)[perm], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(trap.force_divergence(x[perm]), trap.force_divergence(x)[perm], rtol=1e-12)


def test_boltzmann_score_gives_zero_velocity_and_divergence_at_v0_zero(trap, rng):
    eq = dataclasses.replace(trap, v0=0.0)
    fields = jax.jit(lambda system, x, g: flow_fields(system.boltzmann_score, system, x, g), static_argnums=0)
    for _ in range(3):
        x, g = _positions(rng, eq), jnp.asarray(rng.normal(size=(eq.n_particles, eq.dim)))
        f = fields(eq, x, g)
        np.testing.assert_allclose(f.v_x, 0, atol=1e-12)
        np.testing.assert_allclose(f.v_g, 0, atol=1e-12)
        np.testing.assert_allclose(f.div_v_x, 0, atol=1e-10)
        np.testing.assert_allclose(f.div_v_g, 0, atol=1e-10)
    # and it is not stationary once active, or the checks above would prove nothing
    f = fields(trap, x, g)
    assert float(jnp.abs(f.v_x).max()) > 0.05


def test_make_system_and_initial_state(rng):
    system = make_system("trap", dict(TRAP, n_particles=64))
    assert (system.Dx, system.Dg) == (0.1, 0.1) and system.box is None
    x, g = system.initial_state(jax.random.key(0), 3)
    assert x.shape == g.shape == (3, 64, 2)
    assert np.isfinite(x).all()
    assert float(jnp.linalg.norm(x, axis=-1).max()) <= system.a * np.sqrt(2 * 64) + 1e-9


def test_boltzmann_score_divergence_is_the_trace_of_its_jacobian(trap, rng):
    from activeflow.numerics.divergence import score_and_divergence

    for _ in range(2):
        x, g = _positions(rng, trap), jnp.asarray(rng.normal(size=(trap.n_particles, trap.dim)))
        _, _, div_x, div_g = score_and_divergence(trap.boltzmann_score, x, g)
        exact_x, exact_g = trap.boltzmann_score_divergence(x)
        np.testing.assert_allclose(exact_x, div_x, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(exact_g, div_g, rtol=1e-12)
    assert float(jnp.abs(exact_x).max()) > 1.0  # pairs overlap: the stiff part is tested
