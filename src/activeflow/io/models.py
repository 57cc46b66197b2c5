"""Models on disk: Equinox weights (`model.eqx`) beside the JSON spec that rebuilds their skeleton
(`model.json`, see `models.registry`)."""

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import xarray as xr

from activeflow.errors import InputFileError, MissingFileError
from activeflow.io.files import atomic_path
from activeflow.io.netcdf import check_samples, differences, read_netcdf
from activeflow.models.registry import build_model


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
