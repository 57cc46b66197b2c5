"""Stage `mips_fields`: per-particle orientational EPR fields of MIPS snapshots (§7, App. F.7–F.8).

Only s_g is learned for MIPS (the denoising loss (88) on g), so only the g part of the flow is formed:
with D_g = γ, (99) gives

    v_g^i = −γ g^i − γ s_g^i,     ∇_{g^i}·v_g^i = −γ d − γ ∇_{g^i}·s_g^i,

the latter from the exact d×d Jacobian block of particle i (`LocalTransformerScore.score_and_divergence`).
|v_g^i|² is particle i's share of the orientational total EPR (up to the factor 1/γ of the D⁻¹ norm)
and ∇_{g^i}·v_g^i its share of the system EPR.

Each particle also gets its local packing fraction and the direction of its neighbours
(`local_density.py`), and the fields are averaged in bins of the former (`epr_by_local_phi.csv`): the
EPR's profile from the gas across the interface into the dense phase, and whether v_g points out of
the denser side.

The same trained network is applied unchanged to snapshots of any N and φ (transfer, §7.3): it sees
each particle's K nearest neighbours only. Evaluation is chunked over particles, so memory is
O(N·K) for the neighbour indices plus a constant per chunk; no N×N array is formed.
"""

import logging
import time
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from activeflow.analysis import local_density
from activeflow.analysis.diagnostics import invariant_off
from activeflow.io.cf import LENGTH, ONE, RATE, attrs, flag_attrs
from activeflow.models.local_transformer import DIVERGENCE_CHUNK, LocalTransformerScore
from activeflow.numerics.clusters import GAS, INTERIOR, SURFACE, phases
from activeflow.numerics.precision import full_precision
from activeflow.physics.neighbours import NeighbourOverflow, k_nearest, nearest_search

log = logging.getLogger(__name__)
PHASE_NAMES = {GAS: "gas", SURFACE: "surface", INTERIOR: "interior"}


@full_precision
def particle_fields(model: LocalTransformerScore, x: np.ndarray, g: np.ndarray, box: float, gamma: float,
                    search=None, chunk_size: int = DIVERGENCE_CHUNK) -> dict[str, np.ndarray]:
    """s_g, v_g, |v_g|² and ∇_g·v_g of every particle of one snapshot (x, g of shape (N, d))."""
    x, g, box = jnp.asarray(x), jnp.asarray(g), float(box)
    search = search or nearest_search(x, box, model.n_neighbours)
    indices, complete = k_nearest(search, x, model.n_neighbours)
    if not bool(jnp.all(complete)):
        raise NeighbourOverflow(f"the {model.n_neighbours} nearest neighbours of {int(jnp.sum(~complete))} "
                                "particles were not certainly found (search cut-off or capacity too small)")
    s_g, div_s_g = model.score_and_divergence(x, g, indices, box, chunk_size=chunk_size)
    v_g = -gamma * (g + s_g)
    return dict(
        s_g=np.asarray(s_g), v_g=np.asarray(v_g), v_g_sq=np.asarray(jnp.sum(v_g**2, axis=-1)),
        div_g_v_g=np.asarray(-gamma * (x.shape[-1] + div_s_g)), div_s_g=np.asarray(div_s_g),
    )


def snapshot_indices(n_samples: int, n_snapshots: int | None) -> np.ndarray:
    """`n_snapshots` snapshots spread evenly over the file (all if None or more than there are)."""
    if n_snapshots is None or n_snapshots >= n_samples:
        return np.arange(n_samples)
    return np.unique(np.linspace(0, n_samples - 1, n_snapshots).round().astype(int))


def fields_dataset(model: LocalTransformerScore, samples: xr.Dataset, gamma: float,
                   n_snapshots: int | None = None) -> xr.Dataset:
    """Fields of the chosen snapshots of a samples file, with positions, g, the largest-cluster
    membership, the phase (gas / surface / interior), the local packing fraction and the direction of
    the neighbours of each particle."""
    box, contact = float(samples.attrs["box"]), float(samples.attrs["cluster_contact"])
    a, radius = float(samples.attrs["a"]), local_density.LOCAL_RADIUS  # radius in units of a
    which = snapshot_indices(samples.sizes["sample"], n_snapshots)
    xs, gs = samples.x.values[which], samples.g.values[which]
    search = nearest_search(xs, box, model.n_neighbours)  # sized once for all of them: one compilation
    out: dict[str, list[np.ndarray]] = {}
    start = time.perf_counter()
    for done, (x, g) in enumerate(zip(xs, gs), 1):
        f = particle_fields(model, x, g, box, gamma, search)
        f["phase"] = phases(x, box, contact)
        f["local_phi"], f["towards_neighbours"] = local_density.local_structure(x, box, radius * a, a)
        for k, v in f.items():
            out.setdefault(k, []).append(v)
        log.info("snapshot %d/%d: N = %d in %.1f s", done, len(which), x.shape[0], time.perf_counter() - start)
    vec, per = ("sample", "particle", "dim"), ("sample", "particle")
    phase = np.stack(out["phase"])
    return xr.Dataset(
        {
            "x": (vec, xs, attrs("position", LENGTH)),
            "g": (vec, gs, attrs("active force g", ONE)),
            "s_g": (vec, np.stack(out["s_g"]), attrs("learned score in g", ONE)),
            "v_g": (vec, np.stack(out["v_g"]), attrs("probability-flow velocity in g, −γ(g + s_g)", RATE)),
            "v_g_sq": (per, np.stack(out["v_g_sq"]), attrs("|v_g^i|²", "time_unit-2")),
            "div_g_v_g": (per, np.stack(out["div_g_v_g"]), attrs("∇_{g^i}·v_g^i", RATE)),
            "div_s_g": (per, np.stack(out["div_s_g"]), attrs("∇_{g^i}·s_g^i", ONE)),
            "phase": (per, phase.astype(np.int8), flag_attrs("phase of the particle", ["gas", "cluster_surface", "cluster_interior"])),
            "in_largest_cluster": (per, (phase != GAS).astype(np.int8),
                                   flag_attrs("in the largest cluster", ["outside", "inside"])),
            "local_phi": (per, np.stack(out["local_phi"]),
                          attrs(f"packing fraction of the other particles within {radius:g}a", ONE)),
            "towards_neighbours": (vec, np.stack(out["towards_neighbours"]),
                                   attrs(f"sum of x^j - x^i over the particles j within {radius:g}a", LENGTH)),
            "largest_cluster_fraction": ("sample", np.mean(phase != GAS, axis=1),
                                         attrs("fraction of the particles in the largest cluster", ONE)),
            "source_sample": ("sample", which, attrs("index of the snapshot in the samples file", ONE)),
        },
        attrs={k: samples.attrs[k] for k in ("box", "phi", "n_particles", "a", "v0", "gamma", "cluster_contact")},
    )


def by_phase(ds: xr.Dataset, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Per-particle means of |v_g|² and ∇_g·v_g over all snapshots, overall and in each phase, with the
    fraction of particles in each phase: the number behind "the EPR concentrates at the interface".

    Also the score-matching identity E[|s_g^i|² + ∇_{g^i}·s_g^i] = 0, which integration by parts gives
    for the exact score of any density (Fig. 18C, g block, per particle): a learned s_g far from it is
    not the score of the data. Its standard error treats particles as independent (they are not quite:
    neighbours are correlated), so read it as a lower bound. With `thresholds`, `trusted` says whether
    it is zero within z_threshold standard errors or invariant_tolerance of the size of its two terms
    (`sm_identity_g_scale` = E|s_g|² + E|∇_g·s_g|), as for the FPE invariants of the other systems."""
    squared = (ds.s_g**2).sum("dim").values
    identity = squared + ds.div_s_g.values
    row: dict[str, Any] = dict(n_particles=int(ds.attrs["n_particles"]), phi=float(ds.attrs["phi"]),
                               n_snapshots=ds.sizes["sample"],
                               largest_cluster_fraction=float(ds.largest_cluster_fraction.mean()),
                               v_g_sq=float(ds.v_g_sq.mean()), div_g_v_g=float(ds.div_g_v_g.mean()),
                               sm_identity_g=float(identity.mean()),
                               sm_identity_g_stderr=float(identity.std(ddof=1) / np.sqrt(identity.size)),
                               sm_identity_g_scale=float(np.mean(squared + np.abs(ds.div_s_g.values))))
    if thresholds is not None:
        row["trusted"] = not invariant_off(row["sm_identity_g"], row["sm_identity_g_stderr"],
                                           row["sm_identity_g_scale"], thresholds)
    phase = ds.phase.values
    for code, name in PHASE_NAMES.items():
        mask = phase == code
        row[f"fraction_{name}"] = float(mask.mean())
        row[f"v_g_sq_{name}"] = float(ds.v_g_sq.values[mask].mean()) if mask.any() else np.nan
        row[f"div_g_v_g_{name}"] = float(ds.div_g_v_g.values[mask].mean()) if mask.any() else np.nan
    return row


def by_local_phi(ds: xr.Dataset) -> pd.DataFrame:
    """Means over all snapshots of a fields dataset in bins of the local packing fraction
    (`local_density.by_local_phi`): |v_g^i|², ∇_{g^i}·v_g^i, and the cosines of v_g^i and of g^i with the
    direction away from the particle's neighbours (`v_g_outward`, `g_outward`: > 0 pointing out of
    the denser side)."""
    towards = ds.towards_neighbours.values
    return local_density.by_local_phi(
        ds.local_phi.values, v_g_sq=ds.v_g_sq.values, div_g_v_g=ds.div_g_v_g.values,
        v_g_outward=local_density.outward_cosine(ds.v_g.values, towards),
        g_outward=local_density.outward_cosine(ds.g.values, towards),
    )
