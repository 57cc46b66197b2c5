"""Files written atomically (to a hidden temporary name in the same folder, then renamed, after an
fsync), so that a killed job leaves no plausible output; a write that fails (disk full, quota,
permissions) is one error naming the output, the cause and the free space, with nothing left behind; and
the provenance every output carries."""

import contextlib
import datetime
import errno
import glob
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from activeflow.errors import ActiveflowError, OutputWriteError

PACKAGES = ("activeflow", "jax", "jaxlib", "equinox", "optax", "numpy", "xarray", "netCDF4")


def default_file_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` only on success, with the
    mode a plain write would give (the temporary file's own is 0o600, unreadable to the group).
    Leftovers of a writer killed earlier (`.NAME.partial-*`) are removed first."""
    path = Path(path)
    prefix = f".{path.name}.partial-"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(path.suffix)}"):
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        yield tmp
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if isinstance(err, ActiveflowError) or not _is_write_failure(err):
            raise
        raise OutputWriteError(write_failure(path, err)) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _is_write_failure(err: Exception) -> bool:
    # netCDF4 reports a failed HDF5 write (e.g. ENOSPC) as RuntimeError("NetCDF: HDF error")
    return isinstance(err, OSError) or "NetCDF" in str(err) or "HDF" in str(err)


def write_failure(path: Path, err: Exception) -> str:
    """One line: the output, the cause (with its errno name) and the free space of its file system."""
    if isinstance(err, OSError) and err.errno is not None:
        cause = f"{err.strerror or err} ({errno.errorcode.get(err.errno, err.errno)})"
    else:
        cause = str(err)
    try:
        left = shutil.disk_usage(next(p for p in path.parents if p.is_dir())).free
        # a library may name another cause when the disk is full (netCDF4: "Permission denied")
        free = f"{left / 1e6:.1f} MB free on its file system" + (" (it is full)" if left < 1e6 else "")
    except OSError:
        free = "free space unknown"
    return f"could not write {path}: {cause}; {free}; nothing was left under that name"


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


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)
