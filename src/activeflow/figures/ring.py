"""Figures of the two-particle ring: Figs. 2, 3, 12, 13, 14, 15."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from activeflow.analysis.maps import span
from activeflow.figures.style import DOUBLE, SINGLE, size
from activeflow.physics.forces import hard_disk_force, soft_disk_force


def _label(ax, letter: str) -> None:
    ax.text(-0.12, 1.04, letter, transform=ax.transAxes, fontweight="bold", fontsize="large", va="bottom")


def _phase_axes(ax, title: str) -> None:
    ax.set_xlabel("x")
    ax.set_ylabel("g")
    ax.set_title(title)


def _extent(m: xr.Dataset) -> list[float]:
    return [*span(m, "x"), *span(m, "g")]


def _image(fig, ax, m: xr.Dataset, field: np.ndarray, title: str, cmap="viridis", signed=False, clip=None, where=None):
    """Draw a (g, x) field. Signed fields get a diverging map centred on zero; with `clip`, colours
    saturate at that percentile of |value| (over the cells in `where`, if given)."""
    field = np.asarray(field, dtype=float)
    scale = field if where is None else field[where]
    finite = np.abs(scale[np.isfinite(scale)])
    lim = (np.percentile(finite, clip) if clip else finite.max()) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    kw = dict(origin="lower", extent=_extent(m), aspect="auto")
    if signed:
        kw.update(norm=TwoSlopeNorm(0.0, -lim, lim), cmap="RdBu_r")
    else:
        kw.update(vmin=0.0 if field[np.isfinite(field)].min(initial=0) >= 0 else None, vmax=lim, cmap=cmap)
    im = ax.imshow(field, **kw)
    fig.colorbar(im, ax=ax, extend="both" if clip else "neither")
    _phase_axes(ax, title)


def _support(m: xr.Dataset, fraction: float = 1e-3) -> np.ndarray:
    """Cells the samples actually visit (density above a fraction of its maximum)."""
    return m.density.values > fraction * float(m.density.max())


def fig02_ring_flow(map: xr.Dataset, trajectories: xr.Dataset) -> Figure:
    """(A) stochastic trajectories, (B) density ρ, (C) |j|_{D⁻¹}, (D) phase portrait of v."""
    fig, axes = plt.subplots(2, 2, layout="constrained", figsize=size(DOUBLE, 0.78))
    ax = axes[0, 0]
    for k in range(trajectories.sizes["trajectory"]):
        x = trajectories.x.values[k, :, 0, 0]
        g = trajectories.g.values[k, :, 0, 0]
        # break the line where the periodic coordinate wraps around
        jump = np.abs(np.diff(x)) > 0.5 * (span(map, "x")[1] - span(map, "x")[0])
        x, g = np.insert(x, np.where(jump)[0] + 1, np.nan), np.insert(g, np.where(jump)[0] + 1, np.nan)
        ax.plot(x, g, lw=0.5, alpha=0.8)
    ax.set_xlim(_extent(map)[:2])
    ax.set_ylim(_extent(map)[2:])
    _phase_axes(ax, "stochastic trajectories")
    _image(fig, axes[0, 1], map, map.density.values, "stationary density ρ")
    _image(fig, axes[1, 0], map, map.current_norm.values, "current |j|$_{D^{-1}}$ = ρ|v|$_{D^{-1}}$", cmap="magma")
    ax = axes[1, 1]
    ax.imshow(map.density.values, origin="lower", extent=_extent(map), aspect="auto", cmap="Greys", alpha=0.6)
    speed = np.hypot(map.v_x.values, map.v_g.values)
    ax.streamplot(map.x.values, map.g.values, map.v_x.values, map.v_g.values, color=np.log10(speed + 1e-12),
                  cmap="viridis", density=1.6, linewidth=0.7, arrowsize=0.7)
    _phase_axes(ax, "probability flow $\\dot R = v(R)$")
    ax.set_xlim(_extent(map)[:2])
    ax.set_ylim(_extent(map)[2:])
    for a, letter in zip(axes.flat, "ABCD"):
        _label(a, letter)
    return fig


def fig03_ring_system_epr(map: xr.Dataset) -> Figure:
    """∇·v over phase space, on the cells the samples visit (white: ρ below 10⁻³ of its maximum)."""
    fig, ax = plt.subplots(layout="constrained", figsize=size(SINGLE, 0.75))
    field = np.where(_support(map, 1e-2), map.div_v.values, np.nan)
    _image(fig, ax, map, field, "system EPR ∇·v", signed=True, clip=99)
    return fig


def fig12_force_smoothing(a: float, k: float, beta: float) -> Figure:
    """Hard (94) and smoothed (95) repulsion and their derivatives against |x|."""
    r = np.linspace(1e-3, 3 * a, 600)
    dx = r[:, None]
    hard = np.asarray(hard_disk_force(dx, a, k))[:, 0]
    soft = np.asarray(soft_disk_force(dx, a, k, beta))[:, 0]
    fig, (ax1, ax2) = plt.subplots(1, 2, layout="constrained", figsize=size(DOUBLE, 0.4))
    ax1.plot(r, hard, label="f (94)")
    ax1.plot(r, soft, "--", label=f"smoothed f̃ (95), β = {beta:g}")
    ax1.set(xlabel="|x|", ylabel="force", title="force")
    ax2.plot(r, np.gradient(hard, r), label="f′")
    ax2.plot(r, np.gradient(soft, r), "--", label="f̃′")
    ax2.set(xlabel="|x|", ylabel="derivative", title="derivative")
    for ax in (ax1, ax2):
        ax.axvline(2 * a, color="grey", lw=0.5)
        ax.legend()
    return fig


def fig13_ring_decomposition(map: xr.Dataset, epr: xr.Dataset) -> Figure:
    """(A) the system, (B) histograms of system EPR parts, (C) |j_x|, |j_g|, (D) ρ∇_x·v_x, ρ∇_g·v_g."""
    fig, axes = plt.subplots(2, 3, layout="constrained", figsize=size(DOUBLE, 0.56))
    ax = axes[0, 0]
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="k", lw=1)
    for angle, color, label in ((0.3, "tab:blue", "1"), (-0.15, "tab:red", "2")):
        ax.plot(np.cos(angle), np.sin(angle), "o", ms=14, color=color)
        ax.annotate("", xy=(np.cos(angle + 0.35), np.sin(angle + 0.35)), xytext=(np.cos(angle), np.sin(angle)),
                    arrowprops=dict(arrowstyle="->", color=color))
        ax.text(1.2 * np.cos(angle), 1.2 * np.sin(angle), label, ha="center", va="center")
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("two particles on a ring", loc="right")
    ax = axes[1, 0]
    for var, label in (("div_v", "∇·v"), ("div_x_v_x", "∇$_x$·v$_x$"), ("div_g_v_g", "∇$_g$·v$_g$")):
        values = epr[var].values.ravel()
        lo, hi = np.percentile(values, [0.5, 99.5])
        ax.hist(values, bins=120, range=(lo, hi), histtype="step", density=True,
                label=f"{label}: mean {values.mean():+.3g}")
    ax.set(xlabel="system EPR", ylabel="density", title="statistics of the system EPR", yscale="log")
    ax.legend(fontsize="small")
    _image(fig, axes[0, 1], map, map.current_x.values, "|j$_x$| = ρ|v$_x$|", cmap="magma")
    _image(fig, axes[0, 2], map, map.current_g.values, "|j$_g$| = ρ|v$_g$|", cmap="magma")
    _image(fig, axes[1, 1], map, map.weighted_div_x_v_x.values, "ρ ∇$_x$·v$_x$", signed=True)
    _image(fig, axes[1, 2], map, map.weighted_div_g_v_g.values, "ρ ∇$_g$·v$_g$", signed=True)
    for a, letter in zip((axes[0, 0], axes[1, 0], axes[0, 1], axes[1, 1]), "ABCD"):
        _label(a, letter)
    return fig


def fig14_ring_pointwise(map: xr.Dataset) -> Figure:
    """Pointwise (not density-weighted) total EPR (top) and system EPR (bottom) over the whole map;
    colours saturate at the 99th percentile of |value| over the visited cells, so that the large
    values where the particles (almost) never are do not hide the structure."""
    fig, axes = plt.subplots(2, 3, layout="constrained", figsize=size(DOUBLE, 0.56))
    top = (("epr_total", "|v|²$_{D^{-1}}$"), ("epr_x", "|v$_x$|²/D$_x$"), ("epr_g", "|v$_g$|²/D$_g$"))
    bottom = (("div_v", "∇·v"), ("div_x_v_x", "∇$_x$·v$_x$"), ("div_g_v_g", "∇$_g$·v$_g$"))
    for ax, (var, title) in zip(axes[0], top):
        _image(fig, ax, map, map[var].values, title, cmap="magma", clip=99, where=_support(map))
    for ax, (var, title) in zip(axes[1], bottom):
        _image(fig, ax, map, map[var].values, title, signed=True, clip=99, where=_support(map))
    return fig


def fig15_ring_diagnostics(diagnostics: xr.Dataset) -> Figure:
    """Histograms of the FPE invariants over held-out samples, with mean μ and deviation σ."""
    panels = (
        ("fpe_residual", "FPE residual ∇·v + v·s"),
        ("v_dot_s", "v·s"),
        ("div_v", "∇·v"),
        ("sm_identity_x", "|s$_x$|² + ∇$_x$·s$_x$"),
        ("sm_identity_g", "|s$_g$|² + ∇$_g$·s$_g$"),
    )
    fig, axes = plt.subplots(2, 3, layout="constrained", figsize=size(DOUBLE, 0.5))
    axes = axes.ravel()
    axes[-1].set_visible(False)
    for ax, (var, title) in zip(axes, panels):
        values = diagnostics[var].values
        lo, hi = np.percentile(values, [0.5, 99.5])
        ax.hist(values, bins=100, range=(lo, hi), density=True, color="tab:blue", alpha=0.8)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(f"{title}\nμ = {values.mean():+.3g}, σ = {values.std():.3g}")
        ax.set_yscale("log")
    return fig
