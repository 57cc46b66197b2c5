"""Simulation: determinism, key derivation, ring samples stay on the ring."""

import jax
import numpy as np

from activeflow import simulate
from activeflow.seeding import derive_key


def test_same_key_same_bits(ring):
    a = simulate.sample(ring, derive_key(1, "ring"), 64, 0.5, 2, 0.1, 1e-2)
    b = simulate.sample(ring, derive_key(1, "ring"), 64, 0.5, 2, 0.1, 1e-2)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["g"], b["g"])
    assert a["x"].shape == (128, 1, 1)
    np.testing.assert_array_equal(a["replica"], np.tile(np.arange(64), 2))
    assert np.all(np.abs(a["x"]) <= ring.length / 2)


def test_keys_depend_on_seed_and_names_only():
    k = derive_key(5, "ring", "simulate")
    assert np.array_equal(jax.random.key_data(k), jax.random.key_data(derive_key(5, "ring", "simulate")))
    for other in (derive_key(6, "ring", "simulate"), derive_key(5, "trap", "simulate"), derive_key(5, "ring", "train")):
        assert not np.array_equal(jax.random.key_data(k), jax.random.key_data(other))
