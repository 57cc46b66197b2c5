"""Local packing fraction (periodic, against brute force) and the EPR profile in bins of it."""

import numpy as np
import pytest

from activeflow.local_density import PROFILE_EDGES, epr_by_local_phi, local_packing_fraction


def brute_force(x: np.ndarray, box: float, radius: float, a: float) -> np.ndarray:
    dx = x[:, None, :] - x[None, :, :]
    dx -= box * np.round(dx / box)
    r = np.sqrt((dx**2).sum(-1))
    np.fill_diagonal(r, np.inf)
    return (r < radius).sum(1) * a**2 / radius**2


def test_local_packing_fraction_is_the_periodic_count_around_each_particle(rng):
    box, a = 30.0, 0.7
    x = rng.uniform(-box / 2, box / 2, (400, 2))
    x[:50] = box / 2 + rng.uniform(-2.0, 2.0, (50, 2))  # a dense patch across the periodic boundary
    for radius in (2.0, 4.5):
        np.testing.assert_allclose(local_packing_fraction(x, box, radius, a), brute_force(x, box, radius, a))
    # its mean in a uniform gas is the global packing fraction N π a² / L²
    n, box = 20000, 250.0
    y = rng.uniform(0, box, (n, 2))
    assert local_packing_fraction(y, box, 4.0, 1.0).mean() == pytest.approx(n * np.pi / box**2, rel=0.01)
    with pytest.raises(ValueError, match="below half the box"):
        local_packing_fraction(x, 30.0, 16.0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        local_packing_fraction(x[:, :1], 30.0, 2.0)


def test_profile_bins_are_the_means_of_their_particles(rng):
    phi = np.concatenate([rng.uniform(0.0, 0.3, 500), rng.uniform(0.6, 0.7, 300), [1.4, 1.0]])
    v = phi**2 + rng.normal(0, 0.01, phi.size)
    div = -phi
    table = epr_by_local_phi(phi.reshape(2, -1), v.reshape(2, -1), div.reshape(2, -1))
    assert len(table) == len(PROFILE_EDGES) and table.local_phi_high.iloc[-1] == np.inf
    assert table["count"].sum() == phi.size and np.isclose(table.fraction.sum(), 1.0)
    for row in table.itertuples():
        inside = (phi >= row.local_phi_low) & (phi < row.local_phi_high)
        assert row.count == inside.sum()
        if inside.sum() == 0:
            assert np.isnan(row.v_g_sq) and np.isnan(row.div_g_v_g_stderr)
        else:
            assert row.v_g_sq == pytest.approx(v[inside].mean())
            assert row.div_g_v_g == pytest.approx(div[inside].mean())
    last = table.iloc[-1]  # [1, ∞) holds 1.0 and 1.4
    assert last["count"] == 2 and last.v_g_sq_stderr == pytest.approx(v[-2:].std(ddof=1) / np.sqrt(2))
    with pytest.raises(ValueError, match="differ in size"):
        epr_by_local_phi(phi, v[:-1], div)
