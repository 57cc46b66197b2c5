"""Local packing fraction around each particle, and the EPR fields averaged by it (MIPS, §7).

The phase split of `clusters.phases` (gas / surface / interior by bond counts) depends on a contact
distance and lumps the dense cores with the loose network around them. The local packing fraction
φ_loc^i (disks of radius a within `radius` of particle i, periodic distances) is a continuous
coordinate across the interface instead: ≈ the gas density outside a cluster, ≈ the dense phase's
inside it, and in between at its rim. Averaging |v_g^i|² and ∇_{g^i}·v_g^i in bins of φ_loc turns
"the EPR concentrates at the interface and vanishes inside the cluster" (Fig. 8) into a profile.
"""

import numpy as np
import pandas as pd
import scipy.spatial

# Two particle diameters: wide enough to count ~10 neighbours in the dense phase, narrow enough to
# resolve an interface.
LOCAL_RADIUS = 4.0  # in units of the particle radius a
PROFILE_EDGES = np.round(np.arange(0.0, 1.01, 0.1), 10)  # bins of φ_loc; the last is open above


def local_packing_fraction(x: np.ndarray, box: float, radius: float, a: float = 1.0) -> np.ndarray:
    """φ_loc^i = (number of other particles within `radius` of particle i) · a²/radius² for positions
    (N, d=2) in a periodic square of side `box`: the packing fraction of disks of radius a in the disc
    of that radius around i, without i itself, so that its mean in a uniform gas is the global φ.
    O(N log N) with a periodic k-d tree; no N×N array."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"positions must have shape (N, 2), got {x.shape}")
    if not 0 < radius < box / 2:
        raise ValueError(f"radius = {radius}: must be positive and below half the box ({box / 2})")
    folded = np.mod(x, box)
    tree = scipy.spatial.cKDTree(np.where(folded >= box, 0.0, folded), boxsize=box)
    counts = tree.query_ball_point(np.where(folded >= box, 0.0, folded), r=radius, return_length=True) - 1
    return counts * a**2 / radius**2


def epr_by_local_phi(local_phi: np.ndarray, v_g_sq: np.ndarray, div_g_v_g: np.ndarray,
                     edges: np.ndarray = PROFILE_EDGES) -> pd.DataFrame:
    """Per bin [edges[k], edges[k+1]) of φ_loc (the last bin open above): the number and fraction of the
    particles in it, and the mean of |v_g^i|² and of ∇_{g^i}·v_g^i with standard errors (particles
    treated as independent, so a lower bound). Arrays of any shape, all the same; empty bins are kept
    with NaN means, so that every system's table has the same rows."""
    phi, v, div = (np.asarray(a, dtype=float).ravel() for a in (local_phi, v_g_sq, div_g_v_g))
    if not phi.shape == v.shape == div.shape:
        raise ValueError(f"local_phi, v_g_sq and div_g_v_g differ in size: {phi.size}, {v.size}, {div.size}")
    which = np.clip(np.searchsorted(edges, phi, side="right") - 1, 0, len(edges) - 1)
    highs = [*edges[1:], np.inf]
    rows = []
    for k, (low, high) in enumerate(zip(edges, highs)):
        mask = which == k
        rows.append(dict(local_phi_low=float(low), local_phi_high=float(high), count=int(mask.sum()),
                         fraction=float(mask.mean()), **_mean_and_error("v_g_sq", v[mask]),
                         **_mean_and_error("div_g_v_g", div[mask])))
    return pd.DataFrame(rows)


def _mean_and_error(name: str, values: np.ndarray) -> dict[str, float]:
    mean = float(values.mean()) if values.size else np.nan
    error = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else np.nan
    return {name: mean, f"{name}_stderr": error}
