"""Clusters of touching particles with periodic distances: by hand, across the boundary, gas vs solid."""

import numpy as np
import pytest

from activeflow.numerics.clusters import cluster_labels, largest_cluster_fraction


def test_chains_by_hand():
    x = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [7.0, 7.0], [7.5, 7.0], [5.0, 2.0]])
    labels = cluster_labels(x, box=10.0, contact=1.1)
    assert labels[0] == labels[1] == labels[2] and labels[3] == labels[4]
    assert len({labels[0], labels[3], labels[5]}) == 3
    assert largest_cluster_fraction(x, 10.0, 1.1) == pytest.approx(3 / 6)
    # a contact just below the spacing of the first chain breaks it
    assert largest_cluster_fraction(x, 10.0, 0.99) == pytest.approx(2 / 6)


def test_a_cluster_across_the_boundary_is_one_cluster():
    """Two halves of one blob at opposite edges: one cluster with minimum-image distances, two with
    plain ones (a pitfall of the paper's published code)."""
    left = np.array([[0.2, 5.0], [0.2, 6.0], [1.0, 5.5]])
    right = np.array([[9.5, 5.0], [9.5, 6.0]])
    x = np.concatenate([left, right])
    assert largest_cluster_fraction(x, 10.0, 1.1) == 1.0
    assert largest_cluster_fraction(x + np.array([3.0, 0.0]), 10.0, 1.1) == 1.0  # same after a shift
    assert largest_cluster_fraction(x, 100.0, 1.1) == pytest.approx(3 / 5)  # in a big box: apart


def test_gas_against_dense_phase(rng):
    box = 100.0
    gas = rng.uniform(0, box, size=(500, 2))  # 0.05 per unit area: under one bond per particle on average
    assert largest_cluster_fraction(gas, box, 2.2) < 0.05
    lattice = 10.0 + 2.0 * np.stack(np.meshgrid(np.arange(20), np.arange(20)), -1).reshape(-1, 2)  # touching disks
    vapour = rng.uniform(60.0, 100.0, size=(100, 2))
    assert largest_cluster_fraction(np.concatenate([lattice, vapour]), box, 2.2) == pytest.approx(400 / 500, abs=0.01)


def test_bad_contact_is_refused():
    with pytest.raises(ValueError, match="half the box"):
        cluster_labels(np.zeros((2, 2)), box=4.0, contact=2.5)
