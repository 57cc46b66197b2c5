"""Files: NetCDF through xarray with provenance, Equinox models, CSV and figures, all written atomically
(to a temporary name in the same folder, then renamed), so a killed job leaves no plausible output."""

import contextlib
import datetime
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import equinox as eqx
import pandas as pd
import xarray as xr

PACKAGES = ("activeflow", "jax", "jaxlib", "equinox", "optax", "numpy", "xarray", "netCDF4")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
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
        raise FileNotFoundError(f"{path}: file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as err:  # netCDF4 raises OSError/RuntimeError/ValueError for corrupt files
        raise ValueError(f"{path}: not a readable NetCDF file ({err})") from None
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise ValueError(f"{path}: missing variables {missing}; has {sorted(ds.variables)}")
    return ds


def stage_info(ds: xr.Dataset) -> dict[str, Any]:
    """The provenance dictionary a file was written with."""
    return json.loads(ds.attrs.get("provenance", "{}"))


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


def load_model(model_path: str | os.PathLike, spec_path: str | os.PathLike) -> tuple[eqx.Module, dict[str, Any]]:
    """Rebuild the model from its JSON spec and fill in the saved weights."""
    from activeflow.train import build_model  # the spec's meaning lives with training

    for p in (model_path, spec_path):
        if not Path(p).exists():
            raise FileNotFoundError(f"{p}: file does not exist")
    try:
        spec = json.loads(Path(spec_path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{spec_path}: not a model spec JSON ({err})") from None
    skeleton = build_model(spec, key=None)
    try:
        model = eqx.tree_deserialise_leaves(model_path, skeleton)
    except Exception as err:
        raise ValueError(f"{model_path}: weights do not match the spec in {spec_path} ({err})") from None
    return model, spec
