"""MIPS system: the cut-off of the smoothed force, the neighbour-list force against a dense all-pairs
minimum-image reference, overflow detection, and the simulation step against a dense-force integrator."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.numerics import integrators
from activeflow.numerics.integrators import ou_step
from activeflow.physics import mips, neighbours
from activeflow.physics.forces import soft_disk_cutoff, soft_disk_force, soft_disk_force_divergence
from activeflow.physics.neighbours import NeighbourOverflow
from activeflow.physics.space import minimum_image

PAPER = dict(mu=1.0, v0=0.025, gamma=1e-4, eps=0.0, k=1.0, a=1.0, beta=7.5, phi=0.5)


@pytest.mark.parametrize("a, k, beta, tol", [(1.0, 1.0, 7.5, 1e-6), (1.0, 2.5, 7.5, 1e-9), (0.5, 1.0, 2.0, 1e-3)])
def test_force_beyond_the_cutoff_is_below_the_tolerance(a, k, beta, tol):
    rc = soft_disk_cutoff(a, k, beta, tol)
    r = rc + np.r_[0.0, np.geomspace(1e-9, 10.0, 200)]
    dx = jnp.stack([jnp.asarray(r), jnp.zeros_like(r)], -1)
    magnitude = np.linalg.norm(soft_disk_force(dx, a, k, beta), axis=-1)
    assert np.all(magnitude <= tol * (1 + 1e-12))
    # and the cut-off is not wastefully far: just inside it the force is still at the tolerance
    inside = np.linalg.norm(soft_disk_force(jnp.array([[rc - 1e-3, 0.0]]), a, k, beta))
    assert inside > tol
    # the tail estimate k e^{−β(r−2a)}/β of the docstring
    assert abs(rc - (2 * a + np.log(k / (beta * tol)) / beta)) < tol / k  # log expm1(u) = log u + u/2 + …


def dense_force(system, x, cut=True):
    """All N² pairs, minimum image, written independently of the neighbour list."""
    n = x.shape[0]
    dx = minimum_image(x[:, None, :] - x[None, :, :], system.box)
    off = ~jnp.eye(n, dtype=bool)
    keep = off & (jnp.linalg.norm(jnp.where(off[..., None], dx, 1.0), axis=-1) < system.cutoff) if cut else off
    safe = jnp.where(off[..., None], dx, 1.0)
    f = jnp.where(keep[..., None], soft_disk_force(safe, system.a, system.k, system.beta), 0.0).sum(1)
    div = jnp.where(keep, soft_disk_force_divergence(safe, system.a, system.k, system.beta), 0.0).sum(1)
    return f, div


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_force_equals_dense_reference(phi, rng):
    system = mips.MIPS(**PAPER | dict(phi=phi), n_particles=150)
    force = jax.jit(system.force)
    divergence = jax.jit(system.force_divergence)
    dense = jax.jit(dense_force, static_argnums=(0, 2))
    for _ in range(3):
        x = system.initial_positions(jax.random.key(int(rng.integers(1 << 30))), 1)[0]
        f_cut, div_cut = dense(system, x, True)
        f_all, _ = dense(system, x, False)
        np.testing.assert_allclose(force(x), f_cut, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(divergence(x), div_cut, rtol=1e-12, atol=1e-12)
        # truncation: a few times the tolerance at most (≈ 2π n r_c tol/β per particle, n ≤ 1/πa² here)
        assert np.max(np.abs(force(x) - f_all)) < 5 * system.force_tolerance
        assert np.max(np.abs(f_all)) > 1.0  # overlapping pairs: the comparison is not vacuous


def test_force_in_runs_of_particles_equals_dense_reference(monkeypatch, rng):
    """The unsliced list's pair sums in runs of PAIR_BLOCK particles (the last one partial)."""
    monkeypatch.setattr(neighbours, "PAIR_BLOCK", 64)
    system = mips.MIPS(**PAPER | dict(phi=0.7), n_particles=150)
    x = system.initial_positions(jax.random.key(int(rng.integers(1 << 30))), 1)[0]
    # jitted (eager dispatch took seconds), through fresh lambdas: traced now, with the patched block size
    nl = jax.jit(lambda x: system.neighbour_search().build(x))(x)
    assert [b[1].shape[1] for b in nl.column_blocks()] == [64, 64, 22]
    f_cut, div_cut = dense_force(system, x, True)
    force, div = jax.jit(lambda x, nl: (system.force_from(x, nl), system.force_divergence_from(x, nl)))(x, nl)
    np.testing.assert_allclose(force, f_cut, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(div, div_cut, rtol=1e-12, atol=1e-12)


def test_force_has_finite_derivatives_despite_padding(rng):
    system = mips.MIPS(**PAPER, n_particles=40)
    x = system.initial_positions(jax.random.key(3), 1)[0]
    jac = jax.jit(jax.jacfwd(system.force))(x)
    assert np.isfinite(jac).all()
    # the diagonal 2×2 blocks' traces are the analytic per-particle divergence
    blocks = jnp.einsum("iaib->iab", jac.reshape(40, 2, 40, 2))
    np.testing.assert_allclose(jnp.trace(blocks, axis1=1, axis2=2), jax.jit(system.force_divergence)(x), atol=1e-10)


def test_overflow_in_the_force_is_an_error_naming_the_capacity():
    system = mips.MIPS(**PAPER, n_particles=150, cell_capacity=1)
    x = system.initial_positions(jax.random.key(0), 1)[0]
    with pytest.raises(Exception, match="cell_capacity"):
        jax.block_until_ready(jax.jit(system.force)(x))


def test_refuses_a_box_smaller_than_twice_the_cutoff():
    with pytest.raises(ValueError, match="half the box"):
        mips.MIPS(**PAPER, n_particles=4)


def reference_trajectory(system, key, x, g, dt, n_steps):
    """The same scheme and random numbers as `integrators.advance_mips`, with dense all-pairs forces."""

    def body(carry, k):
        x, g = carry
        kx, kg = jax.random.split(k)
        x_new = x + dt * (system.mu * dense_force(system, x)[0] + system.v0 * g)
        if system.eps > 0:
            x_new = x_new + np.sqrt(2 * system.eps * dt) * jax.random.normal(kx, x.shape, x.dtype)
        return (system.wrap(x_new), ou_step(system, kg, g, dt)), None

    run = jax.jit(lambda x, g: jax.lax.scan(body, (x, g), jax.random.split(key, n_steps))[0])
    return run(x, g)


@pytest.mark.parametrize("sliced", [False, True])
def test_simulation_follows_dense_force_integrator_through_rebuilds(sliced):
    """ε > 0 here, so the noise term √(2εΔt) ξ is checked too; with the plain list and the sliced one
    (rows by neighbour count, each slice of its own width; two columns to spare so that it holds)."""
    # v0 large and γ moderate so that particles cross the skin several times in 60 steps
    system = mips.MIPS(**PAPER | dict(v0=1.0, gamma=0.5, eps=0.01), n_particles=100)
    x, g = (s[0] for s in system.initial_state(jax.random.key(1), 1))
    search = system.neighbour_search(skin=0.5)
    if sliced:
        search = sliced_search(system, x)
        search = dataclasses.replace(search, slice_widths=tuple(w + 2 for w in search.slice_widths),
                                     max_neighbours=search.max_neighbours + 2)
    nl = jax.jit(search.build)(x)
    key = jax.random.key(2)
    x1, g1, nl1 = integrators.advance_mips(system, search, key, x, g, nl, 0.05, 60)
    search.check(nl1)
    assert int(nl1.n_builds) >= 4
    xr, gr = reference_trajectory(system, key, x, g, 0.05, 60)
    np.testing.assert_allclose(g1, gr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(minimum_image(x1 - xr, system.box), 0.0, atol=1e-9)


def test_simulate_grows_capacities_on_overflow_or_raises():
    system = mips.MIPS(**PAPER | dict(v0=1.0, gamma=0.5), n_particles=100)
    x, g = (s[0] for s in system.initial_state(jax.random.key(1), 1))
    key = jax.random.key(5)
    tight = dataclasses.replace(system.neighbour_search(0.5), cell_capacity=2, max_neighbours=3)
    xt, gt, grown = integrators.simulate_mips(system, key, x, g, 0.05, 40, chunk=20, search=tight)
    assert grown.cell_capacity > 2 and grown.max_neighbours > 3
    # the same run with the grown capacities from the start
    xa, ga, same = integrators.simulate_mips(system, key, x, g, 0.05, 40, chunk=20, search=grown)
    assert same == grown
    # neighbour rows are in the same order, so the sums, hence the trajectories, agree to the last bits
    np.testing.assert_allclose(xt, xa, atol=1e-12)
    np.testing.assert_array_equal(gt, ga)
    with pytest.raises(NeighbourOverflow, match="cell_capacity=2"):
        integrators.simulate_mips(system, key, x, g, 0.05, 40, chunk=20, search=tight, grow=False)


# ---- the sliced list (rows sorted by neighbour count, cut into slices of their own width) ------------


def sliced_search(system, x, n_slices=3, skin=0.5):
    search = system.neighbour_search(skin)
    return search.fitted(jax.jit(search.build)(x), n_slices=n_slices)


def test_sliced_list_rows_sorted_by_count_and_force_unchanged(rng):
    system = mips.MIPS(**PAPER | dict(phi=0.7), n_particles=150)
    x = system.initial_positions(jax.random.key(4), 1)[0]
    search = sliced_search(system, x)
    assert len(search.slice_widths) == 3 and search.slice_widths[-1] == search.max_neighbours
    nl = jax.jit(search.build)(x)
    assert not search.overflowed(nl)
    n = x.shape[0]
    counts = np.sum(np.asarray(nl.indices) < n, axis=1)
    order = np.asarray(nl.order)
    assert np.all(np.diff(counts[order]) >= 0)  # rows by count
    np.testing.assert_array_equal(np.asarray(nl.inverse)[order], np.arange(n))
    for (particles, columns), width in zip(nl.column_blocks(), search.slice_widths):
        np.testing.assert_array_equal(columns, np.asarray(nl.indices)[np.asarray(particles), :width].T)
    np.testing.assert_array_equal(nl.slice_counts, [counts[order][b - 1] for b in (50, 100, 150)])
    # the widths are snug: the lower slices hold rows with fewer neighbours than the fullest one
    assert search.slice_widths[0] < search.max_neighbours
    f_cut, div_cut = dense_force(system, x)
    np.testing.assert_allclose(jax.jit(system.force_from)(x, nl), f_cut, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jax.jit(system.force_divergence_from)(x, nl), div_cut, rtol=1e-12, atol=1e-12)


def test_slice_overflow_is_named_grown_and_rerun():
    system = mips.MIPS(**PAPER | dict(v0=1.0, gamma=0.5), n_particles=100)
    x, g = (s[0] for s in system.initial_state(jax.random.key(1), 1))
    search = sliced_search(system, x)
    tight = dataclasses.replace(search, slice_widths=(1, 1, search.max_neighbours))
    nl = jax.jit(tight.build)(x)
    assert bool(tight.overflowed(nl))
    with pytest.raises(NeighbourOverflow, match=r"slice_widths=\[1, 1, "):
        tight.check(nl)
    key = jax.random.key(5)
    xt, gt, grown = integrators.simulate_mips(system, key, x, g, 0.05, 40, chunk=20, search=tight)
    assert min(grown.slice_widths[:2]) > 1 and grown.max_neighbours >= search.max_neighbours
    xa, ga, same = integrators.simulate_mips(system, key, x, g, 0.05, 40, chunk=20, search=grown)
    assert same == grown
    np.testing.assert_allclose(xt, xa, atol=1e-12)


def test_the_blocked_layout_slices_the_list_from_sliced_from_particles(monkeypatch):
    system = mips.MIPS(**PAPER, n_particles=100)
    x = system.initial_positions(jax.random.key(0), 1)[0]
    blocked = dataclasses.replace(system.neighbour_search(0.5), layout="blocked")
    nl = jax.jit(blocked.build)(x)
    assert nl.pair_block == neighbours.PAIR_BLOCK
    assert blocked.fitted(nl).slice_widths == ()
    monkeypatch.setattr(neighbours, "SLICED_FROM", 100)
    assert len(blocked.fitted(nl).slice_widths) == neighbours.SLICES
    whole = dataclasses.replace(blocked, layout="whole")  # one pass, unsliced: faster on a GPU
    assert whole.fitted(nl).slice_widths == () and jax.jit(whole.build)(x).pair_block is None


def test_the_default_layout_follows_the_backend_and_a_wrong_one_is_named(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert mips.MIPS(**PAPER, n_particles=100).neighbour_search().layout == "blocked"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert mips.MIPS(**PAPER, n_particles=100).neighbour_search().layout == "whole"
    with pytest.raises(ValueError, match="layout='dense'; allowed"):
        neighbours.NeighbourSearch(box=10.0, cutoff=1.0, skin=0.0, cell_capacity=4, max_neighbours=4, layout="dense")
