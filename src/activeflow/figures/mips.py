"""Figures of motility-induced phase separation (§7, App. F.10): Figs. 8, 9, 10, 11, 19, 20, 21.

Every map is one snapshot of one `fields.nc` (no averaging in space or time: without a trap the
cluster wanders, so a spatial map would blur its rim), its particles drawn as disks of radius a over the
whole periodic box, limits exactly [-L/2, L/2]. With thousands of particles the disks have no outline
(outlines merge into black blobs at N = 32768) and are rasterized in PDFs.

Fig. 8: one row, (A) the largest cluster against the rest, (B) |v_g^i|², (C) ∇_{g^i}·v_g^i, each with
its own colour bar (one system, as for the trap), and (D) their means in bins of the local packing
fraction over all the file's snapshots (`local_density.py`), in units of γ² and γ. Figs. 9, 11, 19-21:
one column per N or per φ (increasing), rows |v_g^i|² and ∇_{g^i}·v_g^i; every box is rescaled to the
unit square (positions / L, radius a / L), so boxes of different sizes fill panels of one size, and each
row shares one colour scale (99th percentile of all its panels): the point is how the EPR grows and
fades across the columns, which per-panel scales would hide. Fig. 10: arrows of v_g^i and of g^i from
the centres of grey disks on a dark background (the long, bright arrows stand out; the short, dark ones
fade, and none is drawn for a zero vector), each panel scaled so that an arrow at the top of its colour
bar (99th percentile of the lengths) is two particle diameters long; a median |g^i| (unit Gaussian g) is
then about 0.8 diameter.
"""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure

from activeflow.analysis.local_density import LOCAL_RADIUS, PROFILE_EDGES, by_local_phi
from activeflow.figures.style import DOUBLE, size
from activeflow.figures.trap import FIELDS, _cmap, _norm, _square, draw_particles

ATTRS = ("box", "phi", "n_particles", "a")
ROWS = ("v_g_sq", "div_g_v_g")  # rows of Figs. 9, 11, 19-21
EDGE_MAX_PARTICLES = 1024  # outlined disks up to this N
ARROW_DIAMETERS = 2.0  # length of an arrow at the top of its colour bar, in particle diameters
CLUSTER_COLOURS = ListedColormap(["#9ecae1", "#08519c"])  # other particles, largest cluster
PROFILE_MIN_COUNT = 20  # particles a bin of Fig. 8D needs to be drawn


def _single(fields: xr.Dataset | Sequence[xr.Dataset]) -> xr.Dataset:
    """One system's file; a list of exactly one (how a rule may pass it) is accepted."""
    if isinstance(fields, xr.Dataset):
        return fields
    if len(fields) != 1:
        raise ValueError(f"this figure draws one system; got {len(fields)} fields files")
    return fields[0]


def _snapshot(fields: xr.Dataset, snapshot: int, needed: Sequence[str], name: str = "fields") -> xr.Dataset:
    """Sample `snapshot` of one file, after checking that it has what the figure draws."""
    missing = [v for v in ("x", *needed) if v not in fields.variables]
    missing += [f"attribute {k}" for k in ATTRS if k not in fields.attrs]
    if missing:
        raise ValueError(f"{name}: missing {missing}; has {sorted(fields.variables)}")
    n_samples, n = fields.sizes["sample"], int(fields.attrs["n_particles"])
    if not -n_samples <= snapshot < n_samples:
        raise ValueError(f"{name}: snapshot {snapshot} out of range; the file has {n_samples} samples")
    if fields.sizes["particle"] != n:
        raise ValueError(f"{name}: {fields.sizes['particle']} particles but attribute n_particles = {n}")
    snap = fields.isel(sample=snapshot)
    half = float(fields.attrs["box"]) / 2
    if np.abs(snap.x.values).max() > half * (1 + 1e-6):
        raise ValueError(f"{name}: positions outside [-L/2, L/2] with L = {2 * half:g}; fold them into the box")
    return snap


def _matching(fields, wanted: Sequence, key: str, increasing: bool = True) -> list[xr.Dataset]:
    """The files, checked to carry attribute `key` equal to `wanted`, in order (one column each)."""
    fields = [fields] if isinstance(fields, xr.Dataset) else list(fields)
    if len(fields) != len(wanted):
        raise ValueError(f"{len(fields)} fields files for {len(wanted)} values of {key} {list(wanted)}")
    found = [_attr(f, key) for f in fields]
    wrong = [f"file {j} has {key} = {a:g}, expected {w:g}"
             for j, (a, w) in enumerate(zip(found, wanted, strict=True)) if not np.isclose(a, w, rtol=1e-6, atol=0)]
    if wrong:
        raise ValueError(f"fields files do not match the requested {key} in order: {'; '.join(wrong)}")
    if increasing and not all(np.diff(np.asarray(wanted, dtype=float)) > 0):
        raise ValueError(f"{key} must be strictly increasing (one column each, left to right): {list(wanted)}")
    return fields


def _attr(fields: xr.Dataset, key: str) -> float:
    if key not in fields.attrs:
        raise ValueError(f"fields file lacks attribute {key!r}; has {sorted(fields.attrs)}")
    return float(fields.attrs[key])


def _style(n: int) -> dict:
    return dict(edge=0.3 if n <= EDGE_MAX_PARTICLES else 0.0, rasterized=n > EDGE_MAX_PARTICLES)


def _extend(signed: bool) -> str:
    return "both" if signed else "max"  # the colour bars saturate at the 99th percentile of |value|


def fig08_mips_epr(fields, snapshot: int = 0) -> Figure:
    """(A) the largest cluster, (B) |v_g^i|², (C) ∇_{g^i}·v_g^i of one snapshot of the training system;
    (D) both averaged in bins of the local packing fraction over all the file's snapshots."""
    ds = _single(fields)
    s = _snapshot(ds, snapshot, ("in_largest_cluster", "largest_cluster_fraction", "local_phi", *ROWS))
    x, a, n, lim = s.x.values, float(s.attrs["a"]), int(s.attrs["n_particles"]), float(s.attrs["box"]) / 2
    fig, axes = plt.subplots(1, 4, layout="constrained", figsize=size(DOUBLE, 0.3),
                             gridspec_kw=dict(width_ratios=[1, 1, 1, 0.9]))
    disks = draw_particles(fig, axes[0], x, s.in_largest_cluster.values.astype(float), a,
                           BoundaryNorm([0, 0.5, 1], 2), CLUSTER_COLOURS, lim, colorbar=False, **_style(n))
    bar = fig.colorbar(disks, ax=axes[0], shrink=0.8, ticks=[0.25, 0.75])
    bar.ax.set_yticklabels(["other", "largest\ncluster"])
    axes[0].set_title(f"(A) largest cluster: {float(s.largest_cluster_fraction):.0%}")
    for ax, letter, field in zip(axes[1:3], "BC", ROWS, strict=True):
        label, signed = FIELDS[field]
        values = s[field].values
        draw_particles(fig, ax, x, values, a, _norm(values, signed), _cmap(signed), lim, extend=_extend(signed),
                       **_style(n))
        ax.set_title(f"({letter}) {label}")
    _profile(axes[3], ds)
    fig.suptitle(f"Motility-induced phase separation: $N = {n}$, $\\phi = {float(s.attrs['phi']):g}$")
    return fig


def _profile(ax, ds: xr.Dataset) -> None:
    """|v_g^i|²/γ² (left axis) and ∇_{g^i}·v_g^i/γ (right axis) averaged in bins of φ_loc, with standard
    errors; bins with fewer than PROFILE_MIN_COUNT particles are left out."""
    gamma = _attr(ds, "gamma")
    table = by_local_phi(ds.local_phi.values, v_g_sq=ds.v_g_sq.values, div_g_v_g=ds.div_g_v_g.values)
    table = table[table["count"] >= PROFILE_MIN_COUNT]
    width = np.diff(PROFILE_EDGES).min()
    centre = np.minimum(table.local_phi_low + width / 2, table.local_phi_high)
    right = ax.twinx()
    for axis, field, scale, unit, colour in ((ax, "v_g_sq", gamma**2, r"\gamma^2", "C0"),
                                             (right, "div_g_v_g", gamma, r"\gamma", "C3")):
        label = FIELDS[field][0]
        axis.errorbar(centre, table[field] / scale, yerr=table[f"{field}_stderr"] / scale, color=colour,
                      marker="o", ms=3.5, capsize=2, label=label)
        axis.set_ylabel(f"{label} / ${unit}$", color=colour)
        axis.tick_params(axis="y", colors=colour)
        axis.set_ylim(bottom=min(0.0, float((table[field] / scale).min()) * 1.1))
    ax.set_xlabel(f"local packing fraction (within {LOCAL_RADIUS:g}$a$)")
    ax.set_xlim(0, PROFILE_EDGES[-1] + width)
    ax.set_title(f"(D) mean over {ds.sizes['sample']} snapshots")


def _grid(systems: list[xr.Dataset], titles: list[str], suptitle: str) -> Figure:
    """Rows ROWS, one column per system, every box rescaled to the unit square; one colour bar a row."""
    n_cols = len(systems)
    fig, axes = plt.subplots(2, n_cols, layout="constrained", figsize=size(DOUBLE, 5.0 / (2.3 * n_cols + 1.0)),
                             squeeze=False)
    for r, field in enumerate(ROWS):
        label, signed = FIELDS[field]
        norm = _norm(np.concatenate([s[field].values for s in systems]), signed)
        for ax, s in zip(axes[r], systems, strict=True):
            box = float(s.attrs["box"])
            disks = draw_particles(fig, ax, s.x.values / box, s[field].values, float(s.attrs["a"]) / box, norm,
                                   _cmap(signed), 0.5, colorbar=False, **_style(s.sizes["particle"]))
        fig.colorbar(disks, ax=list(axes[r]), shrink=0.8, extend=_extend(signed), label=label)
        axes[r, 0].set_ylabel(label)
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title)
    fig.suptitle(suptitle)
    return fig


def fig09_mips_transfer_size(fields, n_particles: list[int], snapshot: int = 0) -> Figure:
    """One column per N (increasing) at one packing fraction, the network trained at N = 4096."""
    fields = _matching(fields, n_particles, "n_particles")
    phi = {_attr(f, "phi") for f in fields}
    if len(phi) > 1:
        raise ValueError(f"Fig. 9 compares N at one packing fraction; the fields files have phi = {sorted(phi)}")
    systems = [_snapshot(f, snapshot, ROWS, f"fields[{j}]") for j, f in enumerate(fields)]
    return _grid(systems, [f"$N = {n}$" for n in n_particles],
                 f"Transfer to larger systems at $\\phi = {phi.pop():g}$ (each box rescaled to the same square)")


def fig_mips_packing_fraction(fields, phi: list[float], n_particles: int, snapshot: int = 0) -> Figure:
    """One column per φ (increasing) at one N: Fig. 11 (N = 8192) and Figs. 19-21 (4096, 16384, 32768)."""
    fields = _matching(fields, phi, "phi")
    _matching(fields, [n_particles] * len(fields), "n_particles", increasing=False)
    systems = [_snapshot(f, snapshot, ROWS, f"fields[{j}]") for j, f in enumerate(fields)]
    return _grid(systems, [f"$\\phi = {p:g}$" for p in phi],
                 f"Transfer to other packing fractions at $N = {n_particles}$ (boxes rescaled to the same square)")


def _arrows(fig, ax, x: np.ndarray, vectors: np.ndarray, radius: float, lim: float, label: str, n: int):
    """Grey disks under arrows at their centres, coloured by length; the 99th percentile of the length
    (top of the colour bar) is drawn ARROW_DIAMETERS particle diameters long."""
    draw_particles(fig, ax, x, np.zeros(len(x)), radius, Normalize(0, 1), ListedColormap(["0.3"]), lim,
                   colorbar=False, **_style(n))
    ax.set_facecolor("0.05")  # dark, so that the long (bright) arrows stand out and the short ones fade
    speed = np.linalg.norm(vectors, axis=-1)
    norm = _norm(speed, signed=False)
    arrows = ax.quiver(x[:, 0], x[:, 1], vectors[:, 0], vectors[:, 1], speed, cmap=_cmap(False), norm=norm,
                       angles="xy", scale_units="xy", scale=norm.vmax / (ARROW_DIAMETERS * 2 * radius), units="xy",
                       width=0.35 * radius, headwidth=3, headlength=3.5, headaxislength=3, minlength=0)
    _square(ax, lim)
    fig.colorbar(arrows, ax=ax, shrink=0.8, extend="max",
                 label=f"{label}   (arrow {ARROW_DIAMETERS:g} diameters long at {norm.vmax:.2g})")
    return arrows


def fig10_mips_flow_arrows(fields, snapshot: int = 0) -> Figure:
    """(A) v_g^i and (B) g^i as arrows at the particles of one snapshot."""
    s = _snapshot(_single(fields), snapshot, ("v_g", "g"))
    x, a, n, lim = s.x.values, float(s.attrs["a"]), int(s.attrs["n_particles"]), float(s.attrs["box"]) / 2
    fig, axes = plt.subplots(1, 2, layout="constrained", figsize=size(DOUBLE, 0.46))
    _arrows(fig, axes[0], x, s.v_g.values, a, lim, r"$|v_g^i|$", n)
    _arrows(fig, axes[1], x, s.g.values, a, lim, r"$|g^i|$", n)
    axes[0].set_title(r"(A) probability flow $v_g^i$")
    axes[1].set_title(r"(B) self-propulsion $g^i$")
    fig.suptitle(f"Motility-induced phase separation, probability flow: $N = {n}$, "
                 f"$\\phi = {float(s.attrs['phi']):g}$")
    return fig
