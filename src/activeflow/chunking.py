"""Evaluation in blocks of rows: bounded memory (and cache-sized intermediates) whatever N is."""

import jax
import jax.numpy as jnp


def map_blocks(f, xs, block_size: int | None):
    """f(block) over the leading axis of the pytree xs, `block_size` rows at a time (None: all at once).

    xs is padded with copies of its first row to whole blocks (one compiled body, no separate
    remainder), mapped block by block with `lax.map`, and the padding dropped from every output."""
    n = jax.tree.leaves(xs)[0].shape[0]
    if block_size is None or block_size >= n:
        return f(xs)
    n_blocks = -(-n // block_size)
    pad = n_blocks * block_size - n

    def blocks(a):
        a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad, *a.shape[1:]))]) if pad else a
        return a.reshape(n_blocks, block_size, *a.shape[1:])

    out = jax.lax.map(f, jax.tree.map(blocks, xs))
    return jax.tree.map(lambda a: a.reshape(n_blocks * block_size, *a.shape[2:])[:n], out)
