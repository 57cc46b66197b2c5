"""Stage `attention_rollout`: where a trained particle transformer looks (§6.5, Fig. 7).

For one held-out snapshot, the head-averaged attention map of every layer and their rollout (93).
Example particles are picked by their distance from the trap centre (innermost, quantiles, outermost),
so the figure shows particles in the core and on the interface.
"""

import logging

import numpy as np
import xarray as xr

from activeflow import io
from activeflow.precision import full_precision
from activeflow.transformer import TransformerScore, rollout

log = logging.getLogger(__name__)


def example_particles(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of n particles spread in distance from the centre of the trap (the origin), from the
    innermost to the outermost."""
    order = np.argsort(np.linalg.norm(x, axis=-1), kind="stable")
    picks = np.round(np.linspace(0, len(order) - 1, n)).astype(int)
    return order[np.unique(picks)]


@full_precision
def rollout_dataset(model, x: np.ndarray, g: np.ndarray, n_examples: int) -> xr.Dataset:
    network = getattr(model, "network", model)
    if not isinstance(network, TransformerScore):
        raise TypeError(f"attention rollout needs a transformer network, not {type(network).__name__}")
    maps = network.attention_maps(x, g)
    rolled, maps = np.asarray(rollout(maps)), np.asarray(maps)
    vec, pair = ("particle", "dim"), ("particle", "source")
    return xr.Dataset(
        {
            "x": (vec, x, {"long_name": "positions of the snapshot"}),
            "g": (vec, g, {"long_name": "active forces of the snapshot"}),
            "layer_attention": (("layer",) + pair, maps, {"long_name": "head-averaged attention A_l of each layer"}),
            "rollout": (pair, rolled, {"long_name": "attention rollout (93); row i: what particle i draws on"}),
            "example": ("example", example_particles(x, n_examples), {"long_name": "particles drawn in Fig. 7"}),
        }
    )


def run(
    model_path: str,
    spec_path: str,
    samples_path: str,
    out_path: str,
    snapshot: int,
    n_examples: int,
    expected: dict | None = None,
) -> None:
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    n = samples.sizes["sample"]
    if not 0 <= snapshot < n:
        raise ValueError(f"map.snapshot = {snapshot}: the held-out set has snapshots 0 to {n - 1}")
    x, g = samples.x.values[snapshot], samples.g.values[snapshot]
    ds = rollout_dataset(model, x, g, n_examples)
    ds.attrs["snapshot"] = snapshot
    for i in ds.example.values:
        row = ds.rollout.values[i]
        near = np.argsort(row)[::-1][:4]
        log.info("particle %d (|x| = %.2f) attends most to %s (weights %s)", i, np.linalg.norm(x[i]), near.tolist(),
                 np.round(row[near], 3).tolist())
    io.write_netcdf(ds, out_path, dict(stage="attention_rollout", model=str(model_path), samples=str(samples_path),
                                       snapshot=snapshot, spec=spec))
