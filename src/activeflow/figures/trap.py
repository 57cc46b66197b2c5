"""Figures of the swimmers in a harmonic trap: Figs. 5, 6, 7, 16, 17, 18; one column per v0.

Top rows: the particles of one held-out snapshot drawn as disks of radius a, coloured by their own
value. Bottom rows: the spatial map of the same field (mean per cell over all held-out snapshots;
cells seen too rarely are blank, not zero). Each panel has its own colour bar, because the values grow
by orders of magnitude with v0; signed fields use a diverging map centred on zero.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.collections import EllipseCollection
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from activeflow import io
from activeflow.analysis.maps import span
from activeflow.figures.style import DOUBLE, size

# field of epr.nc / epr_map.nc -> (label, signed)
FIELDS = {
    "div_g_v_g": (r"$\nabla_{g^i}\cdot v_g^i$", True),
    "v_g_sq": (r"$|v_g^i|^2$", False),
    "v_x_sq": (r"$|v_x^i|^2$", False),
    "epr_total": (r"$|v^i|^2_{D^{-1}}$", False),
    "div_x_v_x": (r"$\nabla_{x^i}\cdot v_x^i$", True),
    "div_v": (r"$\nabla_i\cdot v^i$", True),
}


def _radius(ds: xr.Dataset) -> float:
    """Particle radius a from the model spec recorded in the file's provenance (1 if absent)."""
    return float(io.stage_info(ds).get("spec", {}).get("parameters", {}).get("a", 1.0))


def _norm(values: np.ndarray, signed: bool, clip: float = 99.0) -> Normalize:
    """Colour scale saturating at the `clip` percentile of |value|, so one outlier does not wash out
    the rest; centred on zero for signed fields."""
    finite = np.abs(values[np.isfinite(values)])
    lim = float(np.percentile(finite, clip)) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    if signed:
        return TwoSlopeNorm(0.0, -lim, lim)
    return Normalize(0.0, lim)


def _cmap(signed: bool) -> str:
    return "RdBu_r" if signed else "magma"


def _square(ax, lim: float) -> None:
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_particles(fig, ax, x: np.ndarray, values: np.ndarray, radius: float, norm: Normalize, cmap, lim: float,
                   edge: float = 0.3, colorbar: bool = True, rasterized: bool = False,
                   extend: str = "both") -> EllipseCollection:
    """Disks of radius `radius` (data units) at `x`, coloured by `values`. `edge` is the width in points
    of their black outline (0: none, for thousands of disks, where outlines merge into black blobs);
    `colorbar=False` leaves the colour bar to the caller (e.g. one shared by a row of panels);
    `rasterized` keeps a PDF of many disks small; `extend`: the colour bar's saturation arrows."""
    disks = EllipseCollection(
        widths=2 * radius, heights=2 * radius, angles=0.0, units="xy", offsets=x,
        offset_transform=ax.transData, cmap=cmap, norm=norm,
        edgecolors="k" if edge > 0 else "none", linewidths=edge, rasterized=rasterized,
    )
    disks.set_array(values)
    ax.add_collection(disks)
    ax.set_facecolor("0.92")
    _square(ax, lim)
    if colorbar:
        fig.colorbar(disks, ax=ax, shrink=0.8, extend=extend)
    return disks


def draw_map(fig, ax, m: xr.Dataset, field: str, signed: bool, lim: float):
    values = m[field].values
    extent = [*span(m, "x"), *span(m, "y")]
    im = ax.imshow(np.ma.masked_invalid(values), origin="lower", extent=extent, cmap=_cmap(signed),
                   norm=_norm(values, signed), interpolation="nearest")
    ax.set_facecolor("0.92")  # cells seen too rarely (NaN) stay grey
    _square(ax, lim)
    fig.colorbar(im, ax=ax, shrink=0.8, extend="both")


def _extent_limit(maps: list[xr.Dataset]) -> float:
    m = maps[0]
    return float(max(abs(e) for e in (*span(m, "x"), *span(m, "y"))))


def field_figure(epr: list[xr.Dataset], maps: list[xr.Dataset], v0: list[float], snapshot: int,
                 fields: list[str], title: str) -> Figure:
    """For each field two rows (a snapshot's particles; the spatial map), one column per v0."""
    n_cols, n_rows = len(v0), 2 * len(fields)
    fig, axes = plt.subplots(n_rows, n_cols, layout="constrained",
                             figsize=size(DOUBLE, 2.3 * n_rows / (2.6 * n_cols + 0.5)), squeeze=False)
    lim = _extent_limit(maps)
    for j, (e, m, v) in enumerate(zip(epr, maps, v0, strict=True)):
        x = e.x.values[snapshot]
        for k, field in enumerate(fields):
            label, signed = FIELDS[field]
            values = e[field].values[snapshot]
            top, bottom = axes[2 * k, j], axes[2 * k + 1, j]
            draw_particles(fig, top, x, values, _radius(e), _norm(values, signed), _cmap(signed), lim)
            draw_map(fig, bottom, m, field, signed, lim)
            if k == 0:
                top.set_title(f"$v_0 = {v:g}$")
            if j == 0:
                top.set_ylabel(f"{label}\nsnapshot")
                bottom.set_ylabel(f"{label}\nspatial map")
    fig.suptitle(title)
    return fig


def fig05_trap_system_epr(epr, maps, v0, snapshot=0) -> Figure:
    return field_figure(epr, maps, v0, snapshot, ["div_g_v_g"], "System EPR, orientational part")


def fig06_trap_total_epr(epr, maps, v0, snapshot=0) -> Figure:
    return field_figure(epr, maps, v0, snapshot, ["v_g_sq"], "Total EPR, orientational part")


def fig16_trap_total_epr_parts(epr, maps, v0, snapshot=0) -> Figure:
    return field_figure(epr, maps, v0, snapshot, ["v_x_sq", "epr_total"],
                        "Total EPR: (A) translational part, (B) whole")


def fig17_trap_system_epr_parts(epr, maps, v0, snapshot=0) -> Figure:
    return field_figure(epr, maps, v0, snapshot, ["div_x_v_x", "div_v"],
                        "System EPR: (A) translational part, (B) whole")


def fig07_trap_attention(attention: list[xr.Dataset], v0: list[float], snapshot=0) -> Figure:
    """Rows: example particles (circled in white), from the trap centre outwards; columns: v0.
    Colour: the rollout weight of every particle for the example's score, scaled from the smallest to
    the largest weight of the other particles; the example's own weight (at least ½, from the residual
    identity) saturates."""
    n_rows = max(a.sizes["example"] for a in attention)
    n_cols = len(v0)
    fig, axes = plt.subplots(n_rows, n_cols, layout="constrained",
                             figsize=size(DOUBLE, 2.4 * n_rows / (2.6 * n_cols + 0.5)), squeeze=False)
    lim = max(float(np.abs(a.x.values).max()) for a in attention) + 1.5
    for j, (a, v) in enumerate(zip(attention, v0, strict=True)):
        x, radius = a.x.values, _radius(a)
        for r, i in enumerate(a.example.values):
            ax = axes[r, j]
            weights = a.rollout.values[i]
            others = np.delete(weights, i)
            lo, hi = float(others.min()), float(others.max())
            draw_particles(fig, ax, x, weights, radius, Normalize(lo, hi if hi > lo else lo + 1e-12), "viridis", lim)
            ax.add_patch(plt.Circle(x[i], radius * 1.15, fill=False, ec="w", lw=1.8))
            ax.text(0.03, 0.03, f"particle {i}", transform=ax.transAxes, fontsize="small")
            if r == 0:
                ax.set_title(f"$v_0 = {v:g}$")
            if j == 0:
                ax.set_ylabel(_rank_label(r, n_rows))
    fig.suptitle("Attention rollout: relevance of each particle to the circled particle's score")
    return fig


def _rank_label(r: int, n: int) -> str:
    if n == 1 or r == 0:
        return "innermost"
    return "outermost" if r == n - 1 else f"intermediate ({r}/{n - 1})"


DIAGNOSTIC_PANELS = [
    ("A", r"$\nabla\cdot v\,/N$", lambda d: d.div_v.values),
    ("B", r"$(\nabla\cdot v + v\cdot s)\,/N$", lambda d: d.fpe_residual.values),
    ("C", r"$(|s|^2 + \nabla\cdot s)\,/N$", lambda d: d.sm_identity_x.values + d.sm_identity_g.values),
    ("D", r"$v\cdot s\,/N$", lambda d: d.v_dot_s.values),
]


def fig18_trap_diagnostics(diagnostics: list[xr.Dataset], v0: list[float], snapshot=0) -> Figure:
    """Distributions over held-out snapshots of the four invariants (normalised by N), one histogram
    per v0 on a log density axis, with mean μ and standard deviation σ in the legend."""
    fig, axes = plt.subplots(2, 2, layout="constrained", figsize=size(DOUBLE, 0.7))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(v0)))
    for ax, (letter, label, get) in zip(axes.ravel(), DIAGNOSTIC_PANELS, strict=True):
        for d, v, c in zip(diagnostics, v0, colours, strict=True):
            values = get(d)
            ax.hist(values, bins=40, histtype="step", color=c, density=True,
                    label=f"$v_0={v:g}$: μ={values.mean():+.2g}, σ={values.std(ddof=1):.2g}")
        ax.axvline(0.0, color="k", lw=0.6, ls=":")
        ax.set_yscale("log")  # the v0 = 0 spike is orders of magnitude narrower than the others
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.legend(fontsize="x-small")
        ax.text(-0.1, 1.03, letter, transform=ax.transAxes, fontweight="bold", fontsize="large")
    return fig


def trap_convergence(convergence: list[pd.DataFrame], v0: list[float], snapshot: int = 0) -> Figure:
    """Learned Ṡ_tot against the training step, one panel per v0, with the score-free Ṡ_tot of the
    same held-out snapshots ± s.e. as a band (its value at the last step; it does not depend on the
    score); the relative gap at the last step in each title. Below: the score-matching identities."""
    fig, axes = plt.subplots(2, len(v0), layout="constrained", figsize=size(DOUBLE, 4.6 / (3.4 * len(v0))),
                             squeeze=False, sharex="col",
                             gridspec_kw=dict(height_ratios=[2, 1]))
    for col, (table, v) in enumerate(zip(convergence, v0)):
        top, bottom = axes[0, col], axes[1, col]
        rows = {q: t.sort_values("step") for q, t in table.groupby("quantity")}
        learned = rows["S_tot"]
        top.errorbar(learned.step, learned.value, yerr=learned.stderr, fmt="o-", ms=3, capsize=2, label="learned")
        title = f"v$_0$ = {v:g}"
        if "S_tot_score_free" in rows:
            free, gap = rows["S_tot_score_free"].iloc[-1], rows["S_tot_gap"].iloc[-1]
            top.axhspan(free.value - free.stderr, free.value + free.stderr, color="tab:gray", alpha=0.3,
                        label="score-free ± s.e.")
            top.axhline(free.value, color="tab:gray", lw=1)
            if free.value != 0:
                title += f"\ngap {gap.value / free.value:+.1%} ± {gap.stderr / abs(free.value):.1%}"
        top.set(title=title, ylabel=r"$\dot S_{tot}$" if col == 0 else None)
        for name, style in (("sm_identity_x", "s-"), ("sm_identity_g", "^-")):
            if name in rows:
                r = rows[name]
                bottom.errorbar(r.step, r.value, yerr=r.stderr, fmt=style, ms=3, capsize=2, label=name)
        bottom.axhline(0, color="k", lw=0.5)
        bottom.set(xlabel="training step", ylabel="identity / particle" if col == 0 else None)
        if col == 0:
            top.legend(fontsize="small")
            bottom.legend(fontsize="small")
    return fig
