"""Clusters of touching particles in a periodic box (MIPS, §7, F.5): has a dense phase formed?

Two particles are bonded when their minimum-image distance is below `contact` (e.g. 2.2a for disks of
radius a, a little beyond touching); clusters are the connected components of the bond graph. The pairs
come from SciPy's periodic k-d tree and the components from `scipy.sparse.csgraph`, so the cost is
O(N log N), no N×N array is formed, and a cluster that straddles the box boundary stays one cluster
(DESIGN.md §7: never classify with non-periodic distances).
"""

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.spatial


def cluster_labels(x: np.ndarray, box: float, contact: float) -> np.ndarray:
    """Cluster index of each particle (0, 1, ... in order of first appearance) for positions (N, d)."""
    x = np.asarray(x, dtype=float)
    if contact <= 0 or contact >= box / 2:
        raise ValueError(f"contact = {contact}: must be positive and below half the box ({box / 2})")
    tree = scipy.spatial.cKDTree(np.mod(x, box), boxsize=box)
    pairs = tree.query_pairs(contact, output_type="ndarray")
    n = x.shape[0]
    bonds = scipy.sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return scipy.sparse.csgraph.connected_components(bonds, directed=False)[1]


def largest_cluster_fraction(x: np.ndarray, box: float, contact: float) -> float:
    """Fraction of the particles in the largest cluster: ≈ 1/N in a dilute gas, O(1) once a dense
    phase has formed (the check that equilibration produced MIPS)."""
    labels = cluster_labels(x, box, contact)
    return float(np.bincount(labels).max() / labels.size)
