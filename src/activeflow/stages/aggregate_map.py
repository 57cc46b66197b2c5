"""Stage `aggregate_map`: fields over phase space (ring) or over the plane (trap), per cell the mean
over the samples found there (`analysis.maps`)."""

import logging

from activeflow import io
from activeflow.analysis.maps import SPATIAL_FIELDS, phase_space_map, spatial_maps

log = logging.getLogger(__name__)


def _phase_space(
    model_path: str,
    spec_path: str,
    samples_path: str,
    map_path: str,
    x_range: list[float],
    g_range: list[float],
    bins: list[int],
    smoothing: float,
    expected: dict | None = None,
) -> None:
    """Phase-space grid of a one-coordinate system; `expected` (the config's system, parameters,
    network) guards against a stale model."""
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    log.info("phase-space map: %s bins over x %s, g %s from %d samples", bins, x_range, g_range, samples.sizes["sample"])
    ds = phase_space_map(model, model.system, samples.x.values, samples.g.values, x_range, g_range, bins, smoothing)
    outside = samples.sizes["sample"] - int(ds.counts.sum())
    if outside:
        log.info("%d samples fall outside the map's extent and are not counted", outside)
    io.write_netcdf(ds, map_path, dict(stage="aggregate_map", model=str(model_path), x_range=x_range, g_range=g_range, bins=bins, smoothing=smoothing))


def _spatial(
    epr_path: str, map_path: str, x_range: list[float], y_range: list[float], bins: list[int], min_count: int
) -> None:
    """Spatial maps of particles in the plane, from the per-particle fields of epr.nc."""
    epr = io.read_netcdf(epr_path, required=SPATIAL_FIELDS + ("x",))
    log.info("spatial maps: %s bins over x %s, y %s from %d snapshots x %d particles",
             bins, x_range, y_range, epr.sizes["sample"], epr.sizes["particle"])
    ds = spatial_maps(epr, x_range, y_range, bins, min_count)
    seen = int((ds.counts >= min_count).sum())
    log.info("%d of %d cells seen at least %d times; %d particle positions outside the extent",
             seen, ds.counts.size, min_count, ds.attrs["n_outside"])
    if ds.attrs["n_outside"] > 0.01 * epr.x.values[..., 0].size:
        log.warning("more than 1%% of the particle positions fall outside the map's extent: widen map.x_range/y_range")
    io.write_netcdf(ds, map_path, dict(stage="aggregate_map", epr=str(epr_path), x_range=x_range, y_range=y_range,
                                       bins=bins, min_count=min_count))



def run(kind: str, map_path: str, grid: dict, epr_path: str | None = None, model_path: str | None = None,
        spec_path: str | None = None, samples_path: str | None = None, expected: dict | None = None) -> None:
    """`kind` "spatial" (trap: from epr.nc) or "phase_space" (ring: the network on the samples)."""
    if kind == "spatial":
        _spatial(epr_path, map_path, list(grid["x_range"]), list(grid["y_range"]), list(grid["bins"]),
                 int(grid["min_count"]))
    else:
        _phase_space(model_path, spec_path, samples_path, map_path, list(grid["x_range"]), list(grid["g_range"]),
                     list(grid["bins"]), float(grid["density_smoothing"]), expected)
