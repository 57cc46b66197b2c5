"""activeflow: learned probability flows and entropy production rates of active particles."""

import jax

# Scores and divergences are differences of large terms at small ε: keep float32 inputs but
# let users opt into float64 with JAX_ENABLE_X64; nothing here depends on it.
__all__ = ["jax"]
