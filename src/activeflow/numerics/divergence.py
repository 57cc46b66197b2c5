"""Exact per-particle divergences of a score field: traces of the diagonal d×d Jacobian blocks.

`score_fn(x, g) -> (s_x, s_g)` acts on one snapshot of shape (N, d). The blocks are read off Jacobian
columns obtained by forward-mode products with unit vectors (one linearisation, N·d products per
component), so the result is exact: no stochastic trace estimate.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Snapshot = Float[Array, "N d"]
ScoreFn = Callable[[Snapshot, Snapshot], tuple[Snapshot, Snapshot]]


def score_and_divergence(
    score_fn: ScoreFn, x: Snapshot, g: Snapshot
) -> tuple[Snapshot, Snapshot, Float[Array, " N"], Float[Array, " N"]]:
    """(s_x, s_g, ∇_{x^i}·s_x^i, ∇_{g^i}·s_g^i) for one snapshot. A score that knows a cheaper exact way
    (`ScoreModel.has_fields`: a fitted prior, whose divergence is local) gives them itself."""
    if getattr(score_fn, "has_fields", False):
        return score_fn.fields(x, g)
    (s_x, s_g), tangent = jax.linearize(score_fn, x, g)
    n, d = x.shape
    basis = jnp.eye(n * d, dtype=x.dtype).reshape(n * d, n, d)
    zero = jnp.zeros_like(x)
    # Row e_{ik} of these holds column (i, k) of ∂s_x/∂x and ∂s_g/∂g.
    ds_x = jax.vmap(lambda e: tangent(e, zero)[0])(basis).reshape(n * d, n * d)
    ds_g = jax.vmap(lambda e: tangent(zero, e)[1])(basis).reshape(n * d, n * d)
    div_x = jnp.diagonal(ds_x).reshape(n, d).sum(-1)
    div_g = jnp.diagonal(ds_g).reshape(n, d).sum(-1)
    return s_x, s_g, div_x, div_g
