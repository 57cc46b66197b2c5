"""Map aggregation (phase-space grid of the ring, per-particle spatial means) against hand-computed examples."""

import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.analysis.maps import bin_edges, binned_mean, phase_space_map


def test_bin_centres_are_midpoints():
    edges, centres = bin_edges(-2.0, 2.0, 4)
    np.testing.assert_allclose(edges, [-2, -1, 0, 1, 2])
    np.testing.assert_allclose(centres, [-1.5, -0.5, 0.5, 1.5])


def test_phase_space_map_by_hand(ring):
    # six samples on a 2×2 grid over x ∈ [0, 2], g ∈ [0, 2]; one falls outside and is not counted
    x = np.array([0.5, 0.5, 1.5, 0.2, 1.9, 5.0]).reshape(-1, 1, 1)
    g = np.array([0.5, 1.5, 0.5, 0.1, 1.9, 0.5]).reshape(-1, 1, 1)

    def score(xs, gs):  # a simple exact field: s = (−x, −g)
        return -xs, -gs

    m = phase_space_map(score, ring, x, g, [0.0, 2.0], [0.0, 2.0], [2, 2])
    # rows are g cells, columns x cells
    np.testing.assert_array_equal(m.counts.values, [[2, 1], [1, 1]])
    np.testing.assert_allclose(m.density.values, m.counts.values / (6 * 1.0))
    np.testing.assert_allclose(m.x.values, [0.5, 1.5])
    np.testing.assert_allclose(m.g.values, [0.5, 1.5])
    # v_g = −γg − D_g s_g = (D_g − γ) g at the cell centres; ∇_g·v_g = −γ + D_g
    np.testing.assert_allclose(m.v_g.values[:, 0], (ring.Dg - ring.gamma) * np.array([0.5, 1.5]))
    np.testing.assert_allclose(m.div_g_v_g.values, ring.Dg - ring.gamma)
    np.testing.assert_allclose(m.current_g.values, m.density.values * np.abs(m.v_g.values))
    xc = jnp.array([[1.5]])
    b_x = float(ring.drift(xc, jnp.array([[0.5]]))[0][0, 0])
    np.testing.assert_allclose(m.v_x.values[0, 1], b_x + ring.Dx * 1.5, rtol=1e-10)


def test_density_smoothing_keeps_mass_and_wraps_on_the_ring(ring, rng):
    half = ring.length / 2
    x = rng.uniform(-half, -half + 0.3, size=(4000, 1, 1))  # all in the first x column
    g = rng.normal(scale=0.5, size=(4000, 1, 1))

    def score(xs, gs):
        return -xs, -gs

    raw = phase_space_map(score, ring, x, g, [-half, half], [-4.0, 4.0], [32, 32])
    smooth = phase_space_map(score, ring, x, g, [-half, half], [-4.0, 4.0], [32, 32], smoothing=2.0)
    cell = float((raw.x[1] - raw.x[0]) * (raw.g[1] - raw.g[0]))
    assert abs(float(raw.density.sum()) * cell - 1.0) < 1e-12
    assert abs(float(smooth.density.sum()) * cell - 1.0) < 1e-9
    np.testing.assert_array_equal(smooth.counts, raw.counts)
    # periodic in x: mass spreads across the seam into the last column, as much as into the second
    assert float(raw.density[:, -1].sum()) == 0
    np.testing.assert_allclose(float(smooth.density[:, -1].sum()), float(smooth.density[:, 1].sum()), rtol=1e-9)


# (x, y, value): the last two points lie outside [0, 2]², (2, 2) on the closed outer edge is inside
POINTS = np.array([
    (0.5, 0.5, 1.0), (0.2, 0.9, 3.0), (0.0, 0.0, 0.0),  # cell (y0, x0): 3 points, sum 4
    (1.5, 0.5, -2.0),  # cell (y0, x1): 1 point
    (0.5, 1.5, 4.0),  # cell (y1, x0): 1 point
    (1.2, 1.7, 5.0), (1.9, 1.1, 7.0), (2.0, 2.0, 10.0),  # cell (y1, x1): 3 points, sum 22
    (-0.1, 0.5, 100.0), (0.5, 2.5, 100.0),
])


def test_binned_mean_by_hand():
    m = binned_mean(POINTS[:, :2], POINTS[:, 2], (0.0, 2.0), (0.0, 2.0), 2, min_count=2)
    np.testing.assert_array_equal(m.counts, [[3, 1], [1, 3]])
    np.testing.assert_allclose(m.sum, [[4, -2], [4, 22]])
    np.testing.assert_allclose(m.mean, [[4 / 3, np.nan], [np.nan, 22 / 3]])  # NaN, not 0, where masked
    np.testing.assert_allclose(m.x, [0.5, 1.5])
    np.testing.assert_allclose(m.y, [0.5, 1.5])
    np.testing.assert_allclose(m.x_edges, [0, 1, 2])
    assert m.n_outside == 2
    assert m.counts.sum() + m.n_outside == len(POINTS)


def test_binned_mean_orientation_and_no_masking():
    # one y cell, two x cells: arrays are (y, x)
    m = binned_mean(POINTS[:, :2], POINTS[:, 2], (0.0, 2.0), (0.0, 2.0), (2, 1))
    assert m.counts.shape == (1, 2)
    np.testing.assert_array_equal(m.counts, [[4, 4]])
    np.testing.assert_allclose(m.mean, [[8 / 4, 20 / 4]])
    np.testing.assert_allclose(m.y, [1.0])


def test_binned_mean_of_a_signed_field_is_normalised_by_counts():
    # a value and its negative in one cell average to 0; a weighted histogram over Σ values would be 0/0
    m = binned_mean(np.array([[0.5, 0.5], [0.6, 0.4], [1.5, 1.5]]), np.array([1.0, -1.0, -3.0]), (0, 2), (0, 2), 2)
    np.testing.assert_allclose(m.mean, [[0.0, np.nan], [np.nan, -3.0]])


def test_binned_mean_refuses_bad_input():
    with pytest.raises(ValueError, match="min_count"):
        binned_mean(POINTS[:, :2], POINTS[:, 2], (0, 2), (0, 2), 2, min_count=0)
    with pytest.raises(ValueError, match="finite"):
        binned_mean(np.array([[np.nan, 0.0]]), np.array([1.0]), (0, 2), (0, 2), 2)
    with pytest.raises(ValueError, match="positions"):
        binned_mean(POINTS[:, :2], POINTS[:3, 2], (0, 2), (0, 2), 2)
