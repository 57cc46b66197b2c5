"""Per-particle fields of the active solid's learned s_g beside their closed forms (stage `lattice_fields`).

The learned fields are those of MIPS (`mips_fields.particle_fields`): v_g^i = −γ(g^i + s_g^i),
|v_g^i|² and ∇_{g^i}·v_g^i. Beside each, two exact values from the Fourier closed forms
(`physics.lattice_exact`):
- `_exact`: the score of the continuous dynamics' stationary law, whose mean of |v_g^i|²/γ is the true
  Ṡ_tot per particle, d·z·μ·k (also the score-free truth μΔ_{x^i}Φ, the same for every particle);
- `_chain`: the score of the law of the Euler chain of step Δt that produced the samples, which is what
  a perfectly learned network returns from them; its Ṡ_tot falls short of the truth by about
  (Δt/2)μ²tr H²/N (docs/methods.md).
"""

from typing import Any

import numpy as np
import xarray as xr

from activeflow.analysis.mips_fields import particle_fields, score_checks, snapshot_indices
from activeflow.io.cf import LENGTH, ONE, RATE, attrs
from activeflow.models.imbalance import ImbalanceScore
from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.numerics.athermal import snapshot_forces
from activeflow.physics.lattice import Lattice, make_lattice
from activeflow.physics.lattice_exact import LatticeExact
from activeflow.physics.neighbours import nearest_search


def fields_dataset(model: LocalTransformerScore | ImbalanceScore, samples: xr.Dataset, system: Lattice,
                   n_snapshots: int | None = None) -> xr.Dataset:
    """Learned and exact per-particle fields of the chosen snapshots of an active-solid samples file."""
    if system.n_particles != samples.sizes["particle"] or abs(system.box - float(samples.attrs["box"])) > 1e-9:
        raise ValueError(f"the system (N = {system.n_particles}, box {system.box:g}) is not the samples' "
                         f"(N = {samples.sizes['particle']}, box {float(samples.attrs['box']):g})")
    gamma, dt, d = system.gamma, float(samples.attrs["dt"]), system.dim
    which = snapshot_indices(samples.sizes["sample"], n_snapshots)
    xs, gs = samples.x.values[which], samples.g.values[which]
    forces = snapshot_forces(system, xs) if isinstance(model, ImbalanceScore) else [None] * len(xs)
    search = nearest_search(xs, system.box, model.n_neighbours)
    learned = [particle_fields(model, x, g, system.box, gamma, search, force=None if f is None else np.asarray(f))
               for x, g, f in zip(xs, gs, forces)]
    exact = LatticeExact(system)
    vec, per = ("sample", "particle", "dim"), ("sample", "particle")
    data = {
        "x": (vec, xs, attrs("position", LENGTH)),
        "g": (vec, gs, attrs("active force g", ONE)),
        "s_g": (vec, np.stack([f["s_g"] for f in learned]), attrs("learned score in g", ONE)),
        "v_g": (vec, np.stack([f["v_g"] for f in learned]), attrs("learned v_g = −γ(g + s_g)", RATE)),
        "v_g_sq": (per, np.stack([f["v_g_sq"] for f in learned]), attrs("learned |v_g^i|²", "time_unit-2")),
        "div_g_v_g": (per, np.stack([f["div_g_v_g"] for f in learned]), attrs("learned ∇_{g^i}·v_g^i", RATE)),
        "div_s_g": (per, np.stack([f["div_s_g"] for f in learned]), attrs("learned ∇_{g^i}·s_g^i", ONE)),
        "mu_laplacian_phi": (per, np.full(xs.shape[:2], exact.epr_identity() / system.n_particles),
                             attrs("μΔ_{x^i}Φ = d·z·μ·k, the true Ṡ_tot per particle", RATE)),
    }
    for suffix, step, meaning in (("exact", None, "continuous dynamics"), ("chain", dt, f"Euler chain, Δt = {dt:g}")):
        s_g = exact.score(xs, gs, dt=step)[1]
        v_g = -gamma * (gs + s_g)
        data[f"s_g_{suffix}"] = (vec, s_g, attrs(f"exact score in g ({meaning})", ONE))
        data[f"v_g_{suffix}"] = (vec, v_g, attrs(f"exact v_g ({meaning})", RATE))
        data[f"v_g_sq_{suffix}"] = (per, np.sum(v_g**2, -1), attrs(f"exact |v_g^i|² ({meaning})", "time_unit-2"))
        data[f"div_g_v_g_{suffix}"] = (per, np.full(xs.shape[:2], -gamma * (d + exact.divergence_s_g(dt=step))),
                                       attrs(f"exact ∇_{{g^i}}·v_g^i ({meaning})", RATE))
    data["source_sample"] = ("sample", which, attrs("index of the snapshot in the samples file", ONE))
    keep = ("box", "n_particles", "n_side", "k", "spacing", "mu", "v0", "gamma", "eps", "dt")
    return xr.Dataset(data, attrs={k: samples.attrs[k] for k in keep})


def _rms_relative(learned: np.ndarray, exact: np.ndarray) -> float:
    """rms over particles and snapshots of learned − exact, over the rms of exact."""
    return float(np.sqrt(np.mean((learned - exact) ** 2) / np.mean(exact**2)))


def summary(ds: xr.Dataset, sigma: float | None = None, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """One row: Ṡ_tot per particle learned and exact (closed form, and on these samples), the Euler
    chain's own, the denoising optimum's at noise `sigma` on x and g (closed form), the per-particle
    rms errors of |v_g^i|², the mean ∇_{g^i}·v_g^i, the score-matching identity and the verdict."""
    system = make_lattice({k: np.asarray(ds.attrs[k]).item() for k in ("mu", "v0", "gamma", "eps", "k", "n_side", "spacing")})
    exact, n, gamma = LatticeExact(system), system.n_particles, system.gamma
    row: dict[str, Any] = dict(
        n_side=system.n_side, n_particles=n, v0=system.v0, n_snapshots=ds.sizes["sample"], dt=float(ds.attrs["dt"]),
        S_tot_exact=exact.epr_g() / n, S_tot_chain=exact.chain_epr_g(float(ds.attrs["dt"])) / n,
        S_tot_exact_sampled=float(ds.v_g_sq_exact.mean()) / gamma,
        S_tot_chain_sampled=float(ds.v_g_sq_chain.mean()) / gamma,
    )
    if sigma is not None:
        row["S_tot_denoising_optimum"] = exact.smoothed_epr_g(sigma, sigma) / n
    row |= score_checks(ds, thresholds)
    row |= dict(
        v_g_sq_rms_rel_error=_rms_relative(ds.v_g_sq.values, ds.v_g_sq_exact.values),
        v_g_sq_rms_rel_error_chain=_rms_relative(ds.v_g_sq.values, ds.v_g_sq_chain.values),
        div_g_v_g=float(ds.div_g_v_g.mean()), div_g_v_g_exact=float(ds.div_g_v_g_exact.mean()),
    )
    return row
