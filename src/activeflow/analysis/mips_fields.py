"""Per-particle orientational EPR fields of MIPS snapshots (§7, App. F.7–F.8); computed by the stage
`mips_fields`.

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

The truth these are checked against needs no score. At ε = 0, stationarity gives E[v·s] = 0, so
E[sᵀDs] = −E[∇·b], and with E[g·s_g] = −dN

    Ṡ_tot = γ E|g + s_g|² = μ E[Σ_i Δ_{x^i}Φ] = −μ E[Σ_i ∇_{x^i}·F^i],

the paper's (101) read as a value: each particle's μΔ_{x^i}Φ (`mu_laplacian_phi`, from the known force)
averages to the true Ṡ_tot per particle, which the learned mean of |v_g^i|²/γ must match
(`S_tot_learned` against `S_tot_score_free` in `by_phase`). Per particle, μΔ_{x^i}Φ is not the
particle's EPR; only the means agree.

The same trained network is applied unchanged to snapshots of any N and φ (transfer, §7.3): it sees
each particle's K nearest neighbours only. Evaluation is chunked over particles, so memory is
O(N·K) for the neighbour indices plus a constant per chunk; no N×N array is formed.
"""

import logging
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from activeflow.analysis import local_density
from activeflow.analysis.diagnostics import invariant_off
from activeflow.io.cf import LENGTH, ONE, RATE, attrs, flag_attrs
from activeflow.models.imbalance import ImbalanceScore
from activeflow.models.local_transformer import DIVERGENCE_CHUNK, LocalTransformerScore
from activeflow.numerics.athermal import snapshot_forces
from activeflow.numerics.clusters import GAS, INTERIOR, SURFACE, phases
from activeflow.numerics.precision import full_precision
from activeflow.physics.mips import MIPS
from activeflow.physics.neighbours import NeighbourOverflow, k_nearest, nearest_search

log = logging.getLogger(__name__)
PHASE_NAMES = {GAS: "gas", SURFACE: "surface", INTERIOR: "interior"}


@full_precision
def particle_fields(model: LocalTransformerScore | ImbalanceScore, x: np.ndarray, g: np.ndarray, box: float,
                    gamma: float, search=None, chunk_size: int = DIVERGENCE_CHUNK,
                    force: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """s_g, v_g, |v_g|² and ∇_g·v_g of every particle of one snapshot (x, g of shape (N, d)); an
    `ImbalanceScore` needs the snapshot's `force` on every particle."""
    x, g, box = jnp.asarray(x), jnp.asarray(g), float(box)
    search = search or nearest_search(x, box, model.n_neighbours)
    indices, complete = k_nearest(search, x, model.n_neighbours)
    if not bool(jnp.all(complete)):
        raise NeighbourOverflow(f"the {model.n_neighbours} nearest neighbours of {int(jnp.sum(~complete))} "
                                "particles were not certainly found (search cut-off or capacity too small)")
    if isinstance(model, ImbalanceScore):
        if force is None:
            raise ValueError("a score fed the force imbalance needs the snapshot's force (force=...)")
        s_g, div_s_g = model.score_and_divergence(x, g, indices, box, force=jnp.asarray(force),
                                                  chunk_size=chunk_size)
    else:
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


def snapshot_fields(model: LocalTransformerScore | ImbalanceScore, system: MIPS, xs: np.ndarray, gs: np.ndarray,
                    box: float) -> Iterator[dict[str, np.ndarray]]:
    """`particle_fields` of each snapshot (xs, gs: (S, N, d)) in turn, with one neighbour search sized for all
    of them (one compilation) and the pair forces of `system` where the score takes them."""
    search = nearest_search(xs, box, model.n_neighbours)
    forces = snapshot_forces(system, xs) if isinstance(model, ImbalanceScore) else [None] * len(xs)
    for x, g, force in zip(xs, gs, forces):
        yield particle_fields(model, x, g, box, system.gamma, search, force=None if force is None else np.asarray(force))


def fields_dataset(model: LocalTransformerScore | ImbalanceScore, samples: xr.Dataset, system: MIPS,
                   n_snapshots: int | None = None) -> xr.Dataset:
    """Fields of the chosen snapshots of a samples file, with positions, g, the largest-cluster
    membership, the phase (gas / surface / interior), the local packing fraction, the direction of
    the neighbours and μΔ_{x^i}Φ of each particle (`system`: the samples' particles and box, whose
    force gives the score-free truth)."""
    if abs(system.box - float(samples.attrs["box"])) > 1e-9 * system.box:
        raise ValueError(f"the system's box {system.box:g} is not the samples' {float(samples.attrs['box']):g}")
    laplacian = jax.jit(lambda x: -system.mu * system.force_divergence(x))
    box, contact = float(samples.attrs["box"]), float(samples.attrs["cluster_contact"])
    a, radius = float(samples.attrs["a"]), local_density.LOCAL_RADIUS  # radius in units of a
    which = snapshot_indices(samples.sizes["sample"], n_snapshots)
    xs, gs = samples.x.values[which], samples.g.values[which]
    out: dict[str, list[np.ndarray]] = {}
    start = time.perf_counter()
    for done, (x, f) in enumerate(zip(xs, snapshot_fields(model, system, xs, gs, box)), 1):
        f["mu_laplacian_phi"] = np.asarray(laplacian(jnp.asarray(x)))
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
            "mu_laplacian_phi": (per, np.stack(out["mu_laplacian_phi"]),
                                 attrs("μΔ_{x^i}Φ, whose mean over particles is the true Ṡ_tot per particle", RATE)),
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
    (`sm_identity_g_scale` = E|s_g|² + E|∇_g·s_g|), as for the FPE invariants of the other systems,
    and the learned Ṡ_tot is not off its score-free truth (`epr_against_truth`); `why` says what is not."""
    row: dict[str, Any] = dict(n_particles=int(ds.attrs["n_particles"]), phi=float(ds.attrs["phi"]),
                               v0=float(ds.attrs["v0"]),
                               n_snapshots=ds.sizes["sample"],
                               largest_cluster_fraction=float(ds.largest_cluster_fraction.mean()),
                               v_g_sq=float(ds.v_g_sq.mean()), div_g_v_g=float(ds.div_g_v_g.mean()))
    row |= score_checks(ds, thresholds)
    phase = ds.phase.values
    for code, name in PHASE_NAMES.items():
        mask = phase == code
        row[f"fraction_{name}"] = float(mask.mean())
        row[f"v_g_sq_{name}"] = float(ds.v_g_sq.values[mask].mean()) if mask.any() else np.nan
        row[f"div_g_v_g_{name}"] = float(ds.div_g_v_g.values[mask].mean()) if mask.any() else np.nan
    return row


def score_checks(ds: xr.Dataset, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """The score-matching identity in g (`by_phase`) and the learned Ṡ_tot against its score-free truth
    (`epr_against_truth`); with `thresholds`, `trusted` and `why`."""
    squared = (ds.s_g**2).sum("dim").values
    identity = squared + ds.div_s_g.values
    row: dict[str, Any] = dict(sm_identity_g=float(identity.mean()),
                               sm_identity_g_stderr=float(identity.std(ddof=1) / np.sqrt(identity.size)),
                               sm_identity_g_scale=float(np.mean(squared + np.abs(ds.div_s_g.values))))
    row |= epr_against_truth(ds, thresholds)
    if thresholds is not None:
        identity_off = invariant_off(row["sm_identity_g"], row["sm_identity_g_stderr"], row["sm_identity_g_scale"],
                                     thresholds)
        why = (["S_tot off"] if row["S_tot_off"] else []) + (["sm_identity_g off"] if identity_off else [])
        row |= dict(trusted=not why, why="; ".join(why))
    return row


def _mean_stderr(per_snapshot: np.ndarray) -> tuple[float, float]:
    """Mean over snapshots and its standard error (NaN from a single snapshot)."""
    se = per_snapshot.std(ddof=1) / np.sqrt(per_snapshot.size) if per_snapshot.size > 1 else np.nan
    return float(per_snapshot.mean()), float(se)


def epr_against_truth(ds: xr.Dataset, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """The learned Ṡ_tot per particle, mean |v_g^i|²/γ, against the score-free truth, mean μΔ_{x^i}Φ,
    on the same snapshots: means and standard errors over snapshots, the relative error and z, the
    paired difference over its standard error. With `thresholds`, `S_tot_off` as in the accuracy table:
    off when both |z| > z_threshold (a NaN z, from one snapshot, counts as resolved) and the deviation
    exceeds max(rel_tolerance·truth, abs_tolerance)."""
    gamma = float(ds.attrs["gamma"])
    learned = ds.v_g_sq.values.mean(axis=1) / gamma
    truth = ds.mu_laplacian_phi.values.mean(axis=1)
    (lm, ls), (tm, ts), (dm, dse) = (_mean_stderr(v) for v in (learned, truth, learned - truth))
    if dse > 0 or np.isnan(dse):
        z = dm / dse
    else:  # identical differences on every snapshot: exact, or infinitely many standard errors off
        z = 0.0 if dm == 0 else float(np.sign(dm) * np.inf)
    row = dict(S_tot_learned=lm, S_tot_learned_stderr=ls, S_tot_score_free=tm, S_tot_score_free_stderr=ts,
               S_tot_rel_error=dm / abs(tm) if tm else np.nan, S_tot_z=z)
    if thresholds is not None:
        tolerance = max(thresholds["rel_tolerance"] * abs(tm), thresholds["abs_tolerance"])
        row["S_tot_off"] = bool(not abs(z) <= thresholds["z_threshold"] and abs(dm) > tolerance)
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
