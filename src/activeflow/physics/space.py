"""Periodic space: the one fold of positions into the box, minimum-image displacements and cell indices.

Each function takes NumPy or JAX arrays and returns the same kind, so that the JIT-compiled code
(neighbour lists, forces) and the NumPy/SciPy code (clusters, local density) fold alike.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _namespace(a):
    return jnp if isinstance(a, jax.Array) else np


def minimum_image(dx, box: float | None):
    """Displacement folded into [−L/2, L/2) on a periodic box of side L (identity when box is None)."""
    if box is None:
        return dx
    xp = _namespace(dx)
    return dx - box * xp.round(dx / box)


def fold(x, box: float):
    """Positions folded into [0, L): `mod` can round up to L itself for tiny negative x, mapped to 0."""
    xp = _namespace(x)
    folded = xp.mod(x, box)
    return xp.where(folded >= box, 0.0, folded)


def cell_coordinates(x, box: float, cells_per_side: int):
    """Integer coordinates of the cell holding each (folded) position, cells of side L/m."""
    xp = _namespace(x)
    coords = xp.floor(xp.mod(x, box) * (cells_per_side / box)).astype(xp.int32)
    return xp.clip(coords, 0, cells_per_side - 1)
