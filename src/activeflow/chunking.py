"""Evaluation in blocks: bounded memory (and cache-sized intermediates) whatever N or the number of
snapshots is. `map_blocks` inside JIT (rows of particles), `map_chunks` outside it (snapshots, with
progress lines)."""

import logging
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger(__name__)


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


def map_chunks(fn: Callable[[Any, Any], Any], x: np.ndarray, g: np.ndarray, chunk: int) -> Any:
    """fn(x, g) on chunks of snapshots (bounded memory); the results' leaves concatenated as numpy."""
    starts = range(0, x.shape[0], chunk)
    every = max(len(starts) // 10, 1)  # about ten progress lines for long evaluations
    parts, t0 = [], time.perf_counter()
    for n, i in enumerate(starts, 1):
        parts.append(jax.tree.map(np.asarray, fn(jnp.asarray(x[i : i + chunk], float), jnp.asarray(g[i : i + chunk], float))))
        if len(starts) > 1 and (n % every == 0 or n == len(starts)):
            elapsed = time.perf_counter() - t0
            log.info("evaluated %d/%d snapshots (%.1f s, %.0f s left)", min(i + chunk, x.shape[0]), x.shape[0],
                     elapsed, elapsed * (len(starts) - n) / n)
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *parts)
