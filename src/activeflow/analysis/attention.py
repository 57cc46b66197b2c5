"""Where a trained particle transformer looks (§6.5, Fig. 7); computed by the stage
`attention_rollout`.

For one held-out snapshot, the head-averaged attention map of every layer and their rollout (93).
Example particles are picked by their distance from the trap centre (innermost, quantiles, outermost),
so the figure shows particles in the core and on the interface.
"""


import numpy as np
import xarray as xr

from activeflow.io.cf import LENGTH, ONE, attrs
from activeflow.models.transformer import TransformerScore, rollout
from activeflow.numerics.precision import full_precision


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
            "x": (vec, x, attrs("positions of the snapshot", LENGTH)),
            "g": (vec, g, attrs("active forces of the snapshot", ONE)),
            "layer_attention": (("layer",) + pair, maps, attrs("head-averaged attention A_l of each layer", ONE)),
            "rollout": (pair, rolled, attrs("attention rollout (93); row i: what particle i draws on", ONE)),
            "example": ("example", example_particles(x, n_examples), attrs("particles drawn in Fig. 7", ONE)),
        }
    )
