"""Clusters of touching particles in a periodic box (MIPS, §7, F.5): has a dense phase formed?

Two particles are bonded when their minimum-image distance is below `contact` (e.g. 2.2a for disks of
radius a, a little beyond touching); clusters are the connected components of the bond graph. The pairs
come from SciPy's periodic k-d tree and the components from `scipy.sparse.csgraph`, so the cost is
O(N log N), no N×N array is formed, and a cluster that straddles the box boundary stays one cluster
(never classify with non-periodic distances).
"""

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.spatial

GAS, SURFACE, INTERIOR = 0, 1, 2
# A disk inside a hexagonally packed cluster touches 6 others; one with fewer lies on its surface.
BULK_CONTACTS = 5


def pairs_within(x: np.ndarray, box: float, contact: float) -> np.ndarray:
    """Pairs (i, j), i < j, closer than `contact` (minimum image), as an array of shape (pairs, 2)."""
    x = np.asarray(x, dtype=float)
    if contact <= 0 or contact >= box / 2:
        raise ValueError(f"contact = {contact}: must be positive and below half the box ({box / 2})")
    # mod can round a tiny negative coordinate up to exactly box, which cKDTree refuses
    folded = np.mod(x, box)
    tree = scipy.spatial.cKDTree(np.where(folded >= box, 0.0, folded), boxsize=box)
    return tree.query_pairs(contact, output_type="ndarray")


def _components(pairs: np.ndarray, n: int) -> np.ndarray:
    bonds = scipy.sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return scipy.sparse.csgraph.connected_components(bonds, directed=False)[1]


def cluster_labels(x: np.ndarray, box: float, contact: float) -> np.ndarray:
    """Cluster index of each particle (0, 1, ... in order of first appearance) for positions (N, d)."""
    return _components(pairs_within(x, box, contact), np.shape(x)[0])


def phases(x: np.ndarray, box: float, contact: float, bulk_contacts: int = BULK_CONTACTS) -> np.ndarray:
    """GAS (outside the largest cluster), SURFACE (in it, with fewer than `bulk_contacts` bonds) or
    INTERIOR (in it, with at least that many) for each particle: the classes in which Fig. 8 sees the
    EPR vanish (interior), concentrate (surface) or flicker (gas collisions)."""
    n = np.shape(x)[0]
    pairs = pairs_within(x, box, contact)
    labels = _components(pairs, n)
    largest = labels == np.bincount(labels).argmax()
    count = np.bincount(pairs.ravel(), minlength=n)
    return np.where(~largest, GAS, np.where(count < bulk_contacts, SURFACE, INTERIOR)).astype(np.int8)


def largest_cluster_fraction(x: np.ndarray, box: float, contact: float) -> float:
    """Fraction of the particles in the largest cluster: ≈ 1/N in a dilute gas, O(1) once a dense
    phase has formed (the check that equilibration produced MIPS)."""
    labels = cluster_labels(x, box, contact)
    return float(np.bincount(labels).max() / labels.size)
