"""Phase-space map aggregation against a hand-computed example."""

import jax.numpy as jnp
import numpy as np

from activeflow.maps import bin_edges, phase_space_map


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
