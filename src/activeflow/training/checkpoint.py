"""Checkpoint files: a JSON header and a pytree of arrays in one file, written atomically.

Layout: a magic line, the header as a NumPy array of UTF-8 bytes, then the pytree's leaves as written by
`eqx.tree_serialise_leaves`. The header can be read without the pytree's skeleton (to check that the
checkpoint belongs to this run before touching the weights).
"""

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from activeflow.errors import InputFileError, MissingFileError
from activeflow.io.files import atomic_path

MAGIC = b"activeflow checkpoint v1\n"


def save(path: str | os.PathLike, header: dict[str, Any], tree: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC)
        np.save(f, np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8))
        eqx.tree_serialise_leaves(f, tree)


def _header(f: Any, path: Path) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise InputFileError(f"{path}: not an activeflow checkpoint (no header line)")
    try:
        return json.loads(np.load(f).tobytes().decode())
    except Exception as err:  # truncated or garbled header
        raise InputFileError(f"{path}: checkpoint header is unreadable ({err})") from None


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: file does not exist")
    with open(path, "rb") as f:
        return _header(f, path)


def load(path: str | os.PathLike, skeleton: Any) -> tuple[dict[str, Any], Any]:
    """Header and pytree; `skeleton` gives the structure, shapes and dtypes expected."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: file does not exist")
    with open(path, "rb") as f:
        header = _header(f, path)
        try:
            tree = eqx.tree_deserialise_leaves(f, skeleton)
        except Exception as err:
            raise InputFileError(f"{path}: checkpoint arrays are truncated or do not fit this run ({err})") from None
        if f.read(1):
            raise InputFileError(f"{path}: checkpoint has trailing data: it does not fit this run")
    return header, tree
