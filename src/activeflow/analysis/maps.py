"""Fields on grids; computed by the stage `aggregate_map`.

For many particles in the plane (the trap, §6.4) `binned_mean` maps a per-particle value over space:
per cell, the sum over all particles and snapshots divided by the number of particles seen there.

For the ring (one displacement coordinate x and one g) the whole phase space is a 2-D grid: the
density ρ from a histogram of samples, and v, its divergences and the EPR densities evaluated by the
learned score at the cell centres. Density-weighted versions (current j = ρv, ρ∇·v) are what Figs.
2C, 13C, 13D show; the pointwise ones are Figs. 3 and 14.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.ndimage
import xarray as xr

from activeflow.io.cf import LENGTH, ONE, RATE, VELOCITY_X, attrs, with_bounds
from activeflow.numerics.divergence import ScoreFn
from activeflow.numerics.flow import evaluate_fields
from activeflow.physics.systems import AOUPSystem


def bin_edges(lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges and true centres (midpoints) of `bins` equal cells on [lo, hi]."""
    edges = np.linspace(lo, hi, bins + 1)
    return edges, 0.5 * (edges[:-1] + edges[1:])


class BinnedMean(NamedTuple):
    """Per-cell statistics of a value carried by points in the plane; 2-D arrays are (y, x), as drawn."""

    sum: np.ndarray  # sum of the values in each cell
    counts: np.ndarray  # points in each cell
    mean: np.ndarray  # sum / counts, NaN where counts < min_count
    x: np.ndarray  # cell centres
    y: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    n_outside: int  # points outside the extent, dropped


def binned_mean(
    positions: np.ndarray,
    values: np.ndarray,
    x_range: Sequence[float],
    y_range: Sequence[float],
    bins: int | Sequence[int],
    min_count: int = 1,
) -> BinnedMean:
    """Mean of `values` (n_points,) per cell of a grid over `positions` (n_points, 2).

    Normalised by the number of points per cell, never by the sum of the values, which for a signed
    field such as ∇·v is near zero. Cells are [lo, hi) with the last one closed, as in
    `np.histogram2d`; points outside the extent are dropped and counted."""
    positions, values = np.asarray(positions, float), np.asarray(values, float)
    if positions.ndim != 2 or positions.shape[1] != 2 or values.shape != positions.shape[:1]:
        raise ValueError(f"need positions (n, 2) and values (n,); got {positions.shape} and {values.shape}")
    if not (np.isfinite(positions).all() and np.isfinite(values).all()):
        raise ValueError("positions and values must be finite")
    if min_count < 1:
        raise ValueError(f"min_count={min_count}: must be at least 1 (an empty cell has no mean)")
    bx, by = (bins, bins) if np.isscalar(bins) else bins
    x_edges, xc = bin_edges(*x_range, int(bx))
    y_edges, yc = bin_edges(*y_range, int(by))
    x, y = positions.T
    inside = (x >= x_edges[0]) & (x <= x_edges[-1]) & (y >= y_edges[0]) & (y <= y_edges[-1])
    edges = [x_edges, y_edges]
    counts = np.histogram2d(x[inside], y[inside], bins=edges)[0].T
    total = np.histogram2d(x[inside], y[inside], bins=edges, weights=values[inside])[0].T
    seen = counts >= min_count
    mean = np.divide(total, counts, out=np.full_like(total, np.nan), where=seen)
    return BinnedMean(total, counts, mean, xc, yc, x_edges, y_edges, int((~inside).sum()))


def phase_space_map(
    score_fn: ScoreFn,
    system: AOUPSystem,
    x: np.ndarray,
    g: np.ndarray,
    x_range: list[float],
    g_range: list[float],
    bins: list[int],
    smoothing: float = 0.0,
) -> xr.Dataset:
    """Density, velocity, EPR densities and currents of a one-coordinate system on an (x, g) grid.
    The density is the normalised histogram, optionally smoothed by a Gaussian of `smoothing` cells
    (periodic in x when the system is); `counts` always holds the raw histogram."""
    if (system.n_particles, system.dim) != (1, 1):
        raise ValueError("phase-space maps need a system with one coordinate x and one g (the ring)")
    x_edges, xc = bin_edges(*x_range, bins[0])
    g_edges, gc = bin_edges(*g_range, bins[1])
    counts, _, _ = np.histogram2d(x.ravel(), g.ravel(), bins=[x_edges, g_edges])
    counts = counts.T  # rows g, columns x, as drawn
    cell = (x_edges[1] - x_edges[0]) * (g_edges[1] - g_edges[0])
    density = counts / (x.shape[0] * cell)
    if smoothing > 0:
        # axis 0 is g (open); axis 1 is x, periodic when the map spans the whole ring
        full_ring = system.box is not None and np.isclose(x_range[1] - x_range[0], system.box)
        mode = ("nearest", "wrap" if full_ring else "nearest")
        density = scipy.ndimage.gaussian_filter(density, smoothing, mode=mode)
    G, X = np.meshgrid(gc, xc, indexing="ij")
    f = evaluate_fields(score_fn, system, X.reshape(-1, 1, 1), G.reshape(-1, 1, 1))
    shape = G.shape

    def grid(a: np.ndarray) -> np.ndarray:
        return a.reshape(shape)

    v_x, v_g = grid(f["v_x"]), grid(f["v_g"])
    div_x, div_g = grid(f["div_v_x"]), grid(f["div_v_g"])
    epr_x, epr_g = v_x**2 / system.Dx, v_g**2 / system.Dg
    dims = ("g", "x")
    per_cell = "length_unit-1 time_unit-1"  # ρ (per unit x, g dimensionless) times a rate
    fields = {
        "counts": (counts, "samples per cell", ONE),
        "density": (density, "stationary density ρ (histogram)", "length_unit-1"),
        "v_x": (v_x, "probability-flow velocity v_x", VELOCITY_X),
        "v_g": (v_g, "probability-flow velocity v_g", RATE),
        "epr_x": (epr_x, "|v_x|²/D_x", RATE),
        "epr_g": (epr_g, "|v_g|²/D_g", RATE),
        "epr_total": (epr_x + epr_g, "|v|²_{D⁻¹}", RATE),
        "div_x_v_x": (div_x, "∇_x·v_x", RATE),
        "div_g_v_g": (div_g, "∇_g·v_g", RATE),
        "div_v": (div_x + div_g, "∇·v", RATE),
        "current_x": (density * np.abs(v_x), "|j_x| = ρ|v_x|", RATE),
        "current_g": (density * np.abs(v_g), "|j_g| = ρ|v_g|", per_cell),
        "current_norm": (density * np.sqrt(epr_x + epr_g), "|j|_{D⁻¹} = ρ|v|_{D⁻¹}", "length_unit-1 time_unit-1/2"),
        "weighted_div_v": (density * (div_x + div_g), "ρ∇·v", per_cell),
        "weighted_div_x_v_x": (density * div_x, "ρ∇_x·v_x", per_cell),
        "weighted_div_g_v_g": (density * div_g, "ρ∇_g·v_g", per_cell),
    }
    data = {k: (dims, v, attrs(name, units)) for k, (v, name, units) in fields.items()}
    coords = {
        "x": ("x", xc, attrs("displacement x (cell centre)", LENGTH)),
        "g": ("g", gc, attrs("active force g (cell centre)", ONE)),
    }
    ds = xr.Dataset(data, coords=coords, attrs=dict(n_samples=x.shape[0], Dx=system.Dx, Dg=system.Dg))
    return with_bounds(with_bounds(ds, "x", x_edges), "g", g_edges)


# Per-particle fields of epr.nc mapped over space (§6.4, Figs. 5, 6, 16, 17).
SPATIAL_FIELDS = ("v_x_sq", "v_g_sq", "epr_total", "div_x_v_x", "div_g_v_g", "div_v")


def spatial_maps(
    epr: xr.Dataset,
    x_range: list[float],
    y_range: list[float],
    bins: list[int],
    min_count: int,
    fields: tuple[str, ...] = SPATIAL_FIELDS,
) -> xr.Dataset:
    """`binned_mean` of every per-particle field over the positions x^i of all snapshots in `epr`
    (dims sample, particle, dim with d = 2): the typical value carried by a particle at (x, y).
    Cells seen fewer than `min_count` times are NaN, not zero; `counts` is kept."""
    if epr.sizes.get("dim") != 2:
        raise ValueError(f"spatial maps need particles in the plane (dim = 2), got dim = {epr.sizes.get('dim')}")
    positions = epr.x.values.reshape(-1, 2)
    binned = {name: binned_mean(positions, epr[name].values.ravel(), x_range, y_range, bins, min_count)
              for name in fields}
    data = {
        name: (("y", "x"), b.mean, attrs(f"mean of {epr[name].attrs.get('long_name', name)} per cell",
                                         epr[name].attrs.get("units", "")))
        for name, b in binned.items()
    }
    first = binned[fields[0]]  # counts, centres and edges are the same for every field
    data["counts"] = (("y", "x"), first.counts, attrs("particles seen per cell (all snapshots)", ONE))
    coords = {
        "x": ("x", first.x, attrs("position x (cell centre)", LENGTH)),
        "y": ("y", first.y, attrs("position y (cell centre)", LENGTH)),
    }
    extra = dict(n_snapshots=epr.sizes["sample"], n_particles=epr.sizes["particle"], min_count=min_count,
                 n_outside=first.n_outside)
    ds = xr.Dataset(data, coords=coords, attrs=extra)
    return with_bounds(with_bounds(ds, "x", first.x_edges), "y", first.y_edges)


def span(m: xr.Dataset, coord: str) -> tuple[float, float]:
    """The first and last cell edge of a map along `coord`, from its CF bounds."""
    bounds = m[m[coord].attrs["bounds"]].values
    return float(bounds[0, 0]), float(bounds[-1, 1])
