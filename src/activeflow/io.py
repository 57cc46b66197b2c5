"""Files: NetCDF through xarray with provenance, Equinox models, CSV and figures, all written atomically
(to a temporary name in the same folder, then renamed), so a killed job leaves no plausible output."""

import contextlib
import datetime
import glob
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np
import pandas as pd
import xarray as xr

from activeflow.errors import InputFileError, MissingFileError

log = logging.getLogger(__name__)

PACKAGES = ("activeflow", "jax", "jaxlib", "equinox", "optax", "numpy", "xarray", "netCDF4")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` only on success.
    Leftovers of a writer killed earlier (`.NAME.partial-*`) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.partial-"
    for stale in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(path.suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(info: dict[str, Any]) -> dict[str, str]:
    """Attributes recording how a file was made: the stage's resolved parameters, versions, revision."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "provenance": json.dumps(info, sort_keys=True, default=str),
        "package_versions": json.dumps(versions, sort_keys=True),
        "git_revision": git_revision(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, info: dict[str, Any]) -> None:
    ds = ds.copy()
    ds.attrs.update(provenance(info))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


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


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)


def save_model(model: eqx.Module, spec: dict[str, Any], model_path: str | os.PathLike, spec_path: str | os.PathLike) -> None:
    """Weights with `eqx.tree_serialise_leaves`, and a JSON spec from which the skeleton is rebuilt."""
    with atomic_path(model_path) as tmp:
        eqx.tree_serialise_leaves(tmp, model)
    with atomic_path(spec_path) as tmp:
        tmp.write_text(json.dumps(spec, indent=2, sort_keys=True, default=str))


SPEC_KEYS = ("system", "parameters", "network", "hyperparameters")


def load_model(
    model_path: str | os.PathLike, spec_path: str | os.PathLike, expected: dict[str, Any] | None = None
) -> tuple[eqx.Module, dict[str, Any]]:
    """Rebuild the model from its JSON spec and fill in the saved weights. With `expected` (the config's
    `system`, `parameters`, `network`), a model trained for another configuration is refused."""
    from activeflow.train import build_model  # the spec's meaning lives with training

    for p in (model_path, spec_path):
        if not Path(p).exists():
            raise MissingFileError(f"{p}: file does not exist")
    try:
        spec = json.loads(Path(spec_path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(f"{spec_path}: not a model spec JSON ({err})") from None
    missing = [k for k in SPEC_KEYS if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise InputFileError(f"{spec_path}: not a model spec: missing keys {missing}")
    if expected is not None:
        diff = differences({k: spec.get(k) for k in expected}, json.loads(json.dumps(expected, default=str)))
        if diff:
            raise InputFileError(
                f"{spec_path}: the model was trained for another configuration ({'; '.join(diff)}); "
                "retrain it (e.g. snakemake --forcerun train_score)"
            )
    try:
        skeleton = build_model(spec, key=None)
    except (KeyError, TypeError, ValueError) as err:
        raise InputFileError(f"{spec_path}: cannot build a model from this spec ({err})") from None
    try:
        with open(model_path, "rb") as f:
            model = eqx.tree_deserialise_leaves(f, skeleton)
            trailing = bool(f.read(1))
    except Exception as err:
        raise InputFileError(
            f"{model_path}: weights are truncated or do not match the spec in {spec_path} ({err})"
        ) from None
    if trailing:
        raise InputFileError(f"{model_path}: holds more weights than the spec in {spec_path} describes")
    return model, spec


def load_evaluation_inputs(
    model_path: str | os.PathLike,
    spec_path: str | os.PathLike,
    samples_path: str | os.PathLike,
    expected: dict[str, Any] | None = None,
) -> tuple[eqx.Module, dict[str, Any], xr.Dataset]:
    """The model and the samples a stage evaluates it on, both checked: the model against the config
    (`expected`), the samples against the model's system."""
    model, spec = load_model(model_path, spec_path, expected)
    samples = read_netcdf(samples_path, required=("x", "g"))
    shape = (model.system.n_particles, model.system.dim)
    check_samples(samples, samples_path, spec["system"], spec["parameters"], shape)
    return model, spec, samples
