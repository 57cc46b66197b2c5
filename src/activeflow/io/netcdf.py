"""NetCDF files through xarray: written with provenance, read with a clear error for a missing,
corrupt or foreign file, and samples checked against the config they should belong to."""

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from activeflow.errors import InputFileError, MissingFileError
from activeflow.io import cf
from activeflow.io.files import atomic_path, provenance

log = logging.getLogger(__name__)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, info: dict[str, Any]) -> None:
    """Write `ds` compressed, with provenance and the CF-1.11 global attributes; a variable that lacks
    its CF attributes is a bug of the writer and is refused before anything is written."""
    ds = ds.copy()
    ds.attrs.update(provenance(info))
    versions = json.loads(ds.attrs["package_versions"])
    ds.attrs.update(cf.global_attrs(info, versions.get("activeflow", "unknown"), ds.attrs["created"]))
    wrong = cf.problems(ds)
    if wrong:
        raise ValueError(f"{path}: not written, its metadata is not CF-1.11: {'; '.join(wrong)}")
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=cf.encoding(ds))


def read_netcdf(path: str | os.PathLike, required: tuple[str, ...] = ()) -> xr.Dataset:
    """Open a NetCDF file fully into memory; a missing, unreadable or incomplete file is named."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as err:  # netCDF4 raises OSError/RuntimeError/ValueError for corrupt files
        raise InputFileError(f"{path}: not a readable NetCDF file, truncated or of another format ({err})") from None
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise InputFileError(f"{path}: missing variables {missing}; has {sorted(ds.variables)}")
    return ds


def stage_info(ds: xr.Dataset) -> dict[str, Any]:
    """The provenance dictionary a file was written with."""
    return json.loads(ds.attrs.get("provenance", "{}"))


def differences(found: Any, wanted: Any, key: str = "") -> list[str]:
    """'key: A in the file, B in the config' for every leaf where two nested dicts differ."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        return [
            line
            for k in sorted(set(found) | set(wanted), key=str)
            for line in differences(found.get(k), wanted.get(k), f"{key}.{k}" if key else str(k))
        ]
    return [] if found == wanted else [f"{key or 'value'}: {found!r} in the file, {wanted!r} in the config"]


def check_samples(
    ds: xr.Dataset, path: str | os.PathLike, system: str, parameters: dict[str, Any], shape: tuple[int, int],
    free: tuple[str, ...] = (),
) -> None:
    """Refuse a samples file of another system or configuration, of the wrong shape, or with
    non-finite values, naming the file and what is wrong. Parameters named in `free` may differ (a
    transferred model applies to other N and φ)."""
    for name in ("x", "g"):
        var = ds[name]
        if var.dims != ("sample", "particle", "dim") or var.shape[1:] != shape:
            raise InputFileError(
                f"{path}: {name} has dims {dict(var.sizes)}; the config's system {system!r} needs "
                f"(sample, particle, dim) with (particle, dim) = {shape}"
            )
        if not np.issubdtype(var.dtype, np.floating):
            raise InputFileError(f"{path}: {name} has dtype {var.dtype}; floating point expected")
        bad = ~np.isfinite(var.values)
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            raise InputFileError(f"{path}: {name} has {int(bad.sum())} non-finite values (first in sample {first})")
    info = stage_info(ds)
    if not info:
        log.warning("%s has no provenance: cannot check that it was simulated for this config", path)
        return
    if info.get("stage") != "simulate":
        raise InputFileError(f"{path}: written by stage {info.get('stage')!r}, not by 'simulate': not a samples file")
    fixed = {k: v for k, v in parameters.items() if k not in free}
    found = {k: v for k, v in (info.get("parameters") or {}).items() if k not in free}
    wanted = json.loads(json.dumps(dict(system=system, parameters=fixed), default=str))
    diff = differences(dict(system=info.get("system"), parameters=found), wanted)
    if diff:
        raise InputFileError(
            f"{path}: simulated for another system or parameters ({'; '.join(diff)}); regenerate it "
            "(e.g. snakemake --forcerun simulate)"
        )
