"""Randomness derived from (seed, experiment name, purpose): adding an experiment changes no other."""

import hashlib

import jax


def derive_key(seed: int, *names: str) -> jax.Array:
    """A PRNG key that depends only on the seed and the given names (stable across runs and machines)."""
    key = jax.random.key(seed)
    for name in names:
        digest = hashlib.sha256(name.encode()).digest()
        key = jax.random.fold_in(key, int.from_bytes(digest[:4], "little") & 0x7FFFFFFF)
    return key
