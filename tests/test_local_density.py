"""Local packing fraction (periodic, against brute force) and the EPR profile in bins of it."""

import numpy as np
import pytest

from activeflow.analysis.local_density import PROFILE_EDGES, by_local_phi, local_structure, outward_cosine


def brute_force(x: np.ndarray, box: float, radius: float, a: float) -> tuple[np.ndarray, np.ndarray]:
    dx = x[None, :, :] - x[:, None, :]  # [i, j] = x^j − x^i
    dx -= box * np.round(dx / box)
    r = np.sqrt((dx**2).sum(-1))
    np.fill_diagonal(r, np.inf)
    near = r < radius
    return near.sum(1) * a**2 / radius**2, (dx * near[..., None]).sum(1)


def test_local_structure_is_the_periodic_count_and_pull_of_the_neighbours(rng):
    box, a = 30.0, 0.7
    x = rng.uniform(-box / 2, box / 2, (400, 2))
    x[:50] = box / 2 + rng.uniform(-2.0, 2.0, (50, 2))  # a dense patch across the periodic boundary
    for radius in (2.0, 4.5):
        phi, towards = local_structure(x, box, radius, a)
        expected_phi, expected_towards = brute_force(x, box, radius, a)
        np.testing.assert_allclose(phi, expected_phi)
        np.testing.assert_allclose(towards, expected_towards, atol=1e-9)
    # a particle at the edge of a slab of particles is pulled into the slab, one inside it is not
    grid = np.stack(np.meshgrid(np.arange(-10.0, 0.0), np.arange(-15.0, 15.0)), -1).reshape(-1, 2)
    _, towards = local_structure(grid, 30.0, 2.5)
    edge, inside = np.flatnonzero(grid[:, 0] == -1.0)[0], np.flatnonzero(grid[:, 0] == -5.0)[0]
    assert towards[edge, 0] < -1 and abs(towards[edge, 1]) < 1e-9 and np.allclose(towards[inside], 0.0)
    assert outward_cosine(np.array([[1.0, 0.0]]), towards[[edge]])[0] == pytest.approx(1.0)
    assert np.isnan(outward_cosine(np.array([[1.0, 0.0]]), towards[[inside]])[0])
    # its mean in a uniform gas is the global packing fraction N π a² / L²
    n, box = 20000, 250.0
    y = rng.uniform(0, box, (n, 2))
    assert local_structure(y, box, 4.0, 1.0)[0].mean() == pytest.approx(n * np.pi / box**2, rel=0.01)
    with pytest.raises(ValueError, match="below half the box"):
        local_structure(x, 30.0, 16.0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        local_structure(x[:, :1], 30.0, 2.0)


def test_profile_bins_are_the_means_of_their_particles(rng):
    phi = np.concatenate([rng.uniform(0.0, 0.3, 500), rng.uniform(0.6, 0.7, 300), [1.4, 1.0]])
    v = phi**2 + rng.normal(0, 0.01, phi.size)
    div = -phi
    div[3] = np.nan  # left out of its bin's mean
    table = by_local_phi(phi.reshape(2, -1), v_g_sq=v.reshape(2, -1), div_g_v_g=div.reshape(2, -1))
    assert len(table) == len(PROFILE_EDGES) and table.local_phi_high.iloc[-1] == np.inf
    assert table["count"].sum() == phi.size and np.isclose(table.fraction.sum(), 1.0)
    for row in table.itertuples():
        inside = (phi >= row.local_phi_low) & (phi < row.local_phi_high)
        assert row.count == inside.sum()
        if inside.sum() == 0:
            assert np.isnan(row.v_g_sq) and np.isnan(row.div_g_v_g_stderr)
        else:
            assert row.v_g_sq == pytest.approx(v[inside].mean())
            assert row.div_g_v_g == pytest.approx(np.nanmean(div[inside]))
    last = table.iloc[-1]  # [1, ∞) holds 1.0 and 1.4
    assert last["count"] == 2 and last.v_g_sq_stderr == pytest.approx(v[-2:].std(ddof=1) / np.sqrt(2))
    with pytest.raises(ValueError, match=r"sizes differ from local_phi's 802: \{'v_g_sq': 801\}"):
        by_local_phi(phi, v_g_sq=v[:-1], div_g_v_g=div)
