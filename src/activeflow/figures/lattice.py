"""The active solid's closed forms as a figure: what the denoising loss's smoothing and the integrator's
time step do to the Ṡ_tot of a perfectly learned score at ε = 0 (`physics.lattice_exact`), with the
learned values of the workflow's `lattice` section beside them."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from activeflow.figures.style import DOUBLE, size
from activeflow.physics.lattice import Lattice
from activeflow.physics.lattice_exact import LatticeExact

PAPER_SIGMA = 0.01


def athermal_smoothing(epr: list[pd.DataFrame], mu: float, k: float, v0: float, gamma: float, sigma: float, dt: float,
                       n_side: int) -> Figure:
    """(A) Ṡ_tot per particle of the denoising optimum against the noise σ, on x and g together (the
    loss (88)) and on g alone, with the exact value d·z·μ·k; the configured σ and the paper's marked.
    (B) Ṡ_tot of the Euler chain's own score against Δt (the simulation's integrator), the configured Δt
    marked, and the learned Ṡ_tot (mean ± s.e.) of each evaluated side (the rows of the `epr` tables)
    at the simulation's Δt."""
    exact = LatticeExact(Lattice(mu=mu, v0=v0, gamma=gamma, eps=0.0, k=k, n_side=n_side))
    n = exact.system.n_particles
    truth = exact.epr_identity() / n
    sigmas = np.logspace(-6, 0, 61)
    both = [exact.smoothed_epr_g(s, s) / n for s in sigmas]
    g_only = [exact.smoothed_epr_g(0.0, s) / n for s in sigmas]
    fig, (ax1, ax2) = plt.subplots(1, 2, layout="constrained", figsize=size(DOUBLE, 0.4))
    ax1.loglog(sigmas, both, label="noise on x and g (loss (88))")
    ax1.loglog(sigmas, g_only, "--", label="noise on g only")
    ax1.axhline(truth, color="k", lw=1, label=f"exact d·z·μ·k = {truth:g}")
    for s, what in ((sigma, "training.sigma"), (PAPER_SIGMA, "paper")):
        ax1.axvline(s, color="grey", lw=0.5)
        ax1.annotate(f"σ = {s:g} ({what})", (s, truth * 1e-8), rotation=90, fontsize="small", ha="right",
                     va="bottom")
    ax1.set(xlabel="σ", ylabel="Ṡ$_{tot}$ per particle", ylim=(truth * 1e-9, truth * 3),
            title="(A) denoising optimum, active solid")
    ax1.legend(fontsize="small", loc="lower left")
    rate = np.max(exact.rates)
    dts = np.linspace(0.002, min(max(0.2, 2 * dt), 1.9 / rate), 50)
    ax2.plot(dts, [exact.chain_epr_g(t) / n for t in dts], label="exact score of the Euler chain")
    ax2.axvline(dt, color="grey", lw=0.5)
    ax2.annotate(f"Δt = {dt:g} (simulation.dt)", (dt, truth * 0.45), rotation=90, fontsize="small", ha="right",
                 va="bottom")
    ax2.axhline(truth, color="k", lw=1, label="continuous dynamics")
    learned = pd.concat(epr, ignore_index=True).sort_values("n_side")
    offsets = (np.arange(len(learned)) - (len(learned) - 1) / 2) * 0.01 * dts[-1]
    for offset, row in zip(offsets, learned.itertuples()):
        ax2.errorbar(row.dt + offset, row.S_tot_learned, yerr=row.S_tot_learned_stderr, fmt="o", ms=4, capsize=2,
                     label=f"learned, {row.n_side}×{row.n_side}" + (" (trained)" if row.n_side == n_side else ""))
    ax2.set(xlabel="Δt", ylabel="Ṡ$_{tot}$ per particle", ylim=(0, truth * 1.1), title="(B) time step")
    ax2.legend(fontsize="small", loc="lower left")
    fig.suptitle(f"Active solid, ε = 0, {n_side}×{n_side}: μ = {mu:g}, k = {k:g}, v0 = {v0:g}, γ = {gamma:g}")
    return fig
