"""Central differences for the tests of exact divergences."""

import jax.numpy as jnp
import numpy as np


def block_trace(fn, a, i: int, h: float) -> float:
    """Σ_k ∂fn(a)_k/∂a[i, k] by central differences: the trace of particle i's own d×d block of the
    Jacobian, where `fn` maps a per-particle array a of shape (N, d) to particle i's d-vector."""
    a = np.array(a, dtype=np.float64)
    trace = 0.0
    for k in range(a.shape[1]):
        plus, minus = a.copy(), a.copy()
        plus[i, k] += h
        minus[i, k] -= h
        trace += float(fn(jnp.asarray(plus))[k] - fn(jnp.asarray(minus))[k]) / (2 * h)
    return trace
