"""Local packing fraction around each particle, the direction of its denser side, and the EPR fields
averaged in bins of the former (MIPS, §7).

The phase split of `clusters.phases` (gas / surface / interior by bond counts) depends on a contact
distance and lumps the dense cores with the loose network around them. The local packing fraction
φ_loc^i (disks of radius a within `radius` of particle i, periodic distances) is a continuous
coordinate across the interface instead: ≈ the gas density outside a cluster, ≈ the dense phase's
inside it, and in between at its rim. Averaging |v_g^i|² and ∇_{g^i}·v_g^i in bins of φ_loc turns
"the EPR concentrates at the interface and vanishes inside the cluster" (Fig. 8) into a profile, and
the cosine of v_g^i with the direction away from the particle's neighbours turns "v_g points outward
near the interface" (Fig. 10) into one.
"""

import numpy as np
import pandas as pd

from activeflow.numerics.clusters import pairs_within

# Two particle diameters: wide enough to count ~10 neighbours in the dense phase, narrow enough to
# resolve an interface.
LOCAL_RADIUS = 4.0  # in units of the particle radius a
PROFILE_EDGES = np.round(np.arange(0.0, 1.01, 0.1), 10)  # bins of φ_loc; the last is open above


def local_structure(x: np.ndarray, box: float, radius: float, a: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(φ_loc, towards) for positions (N, d=2) in a periodic square of side `box`:

    - φ_loc^i = (number of other particles within `radius` of i) · a²/radius², the packing fraction of
      disks of radius a in the disc of that radius around i, without i itself (its mean in a uniform
      gas is the global φ);
    - towards^i = Σ_j (x^j − x^i) over those particles (minimum image), which points to the side where
      i's neighbours are: into the dense phase at an interface, ≈ 0 deep inside either phase.

    O(N log N) with a periodic k-d tree; no N×N array."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"positions must have shape (N, 2), got {x.shape}")
    pairs = pairs_within(x, box, radius)
    counts = np.bincount(pairs.ravel(), minlength=len(x))
    d = x[pairs[:, 1]] - x[pairs[:, 0]]
    d -= box * np.round(d / box)
    towards = np.zeros_like(x)
    np.add.at(towards, pairs[:, 0], d)
    np.add.at(towards, pairs[:, 1], -d)
    return counts * a**2 / radius**2, towards


def outward_cosine(vectors: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """cos of the angle between each vector and −towards (> 0: pointing away from the neighbours); NaN
    where either is zero."""
    dot = -np.sum(vectors * towards, axis=-1)
    norms = np.linalg.norm(vectors, axis=-1) * np.linalg.norm(towards, axis=-1)
    return np.divide(dot, norms, out=np.full(dot.shape, np.nan), where=norms > 0)


def by_local_phi(local_phi: np.ndarray, edges: np.ndarray = PROFILE_EDGES, **values: np.ndarray) -> pd.DataFrame:
    """Per bin [edges[k], edges[k+1]) of φ_loc (the last bin open above): the number and fraction of the
    particles in it, and for each named per-particle quantity its mean and standard error over the bin
    (NaNs left out; particles treated as independent, so the error is a lower bound). Arrays of any
    shape, all the same; empty bins are kept with NaN means, so that every system's table has the same
    rows."""
    phi = np.asarray(local_phi, dtype=float).ravel()
    flat = {name: np.asarray(v, dtype=float).ravel() for name, v in values.items()}
    wrong = {name: v.size for name, v in flat.items() if v.size != phi.size}
    if wrong:
        raise ValueError(f"sizes differ from local_phi's {phi.size}: {wrong}")
    which = np.clip(np.searchsorted(edges, phi, side="right") - 1, 0, len(edges) - 1)
    highs = [*edges[1:], np.inf]
    rows = []
    for k, (low, high) in enumerate(zip(edges, highs)):
        mask = which == k
        row = dict(local_phi_low=float(low), local_phi_high=float(high), count=int(mask.sum()),
                   fraction=float(mask.mean()))
        for name, v in flat.items():
            row |= _mean_and_error(name, v[mask])
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_and_error(name: str, values: np.ndarray) -> dict[str, float]:
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if values.size else np.nan
    error = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else np.nan
    return {name: mean, f"{name}_stderr": error}
