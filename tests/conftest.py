import os
import tempfile

import jax
import numpy as np
import pytest
from jaxtyping import install_import_hook

# One persistent compilation cache for the whole session, the Snakemake jobs it starts included (they
# inherit the environment), and the xdist workers of one run (named by the run's id): the tests compile
# the same functions in many processes. Every compilation is cached, not only those over a second.
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_cache = os.path.join(tempfile.gettempdir(), f"activeflow-jax-cache-{_run}") if _run else None
if _cache:
    os.makedirs(_cache, exist_ok=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _cache or tempfile.mkdtemp(prefix="activeflow-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))

# Every jaxtyping annotation of the library (array shapes and dtypes) and its other type hints are
# checked at each call while the tests run: installed before anything imports activeflow.
install_import_hook("activeflow", "typechecker.checker")

# Closed-form comparisons need double precision; the workflow itself runs in float32 (subprocesses).
jax.config.update("jax_enable_x64", True)

from activeflow.physics.systems import Linear, Ring

RING_PAPER = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, length=16.0)


@pytest.fixture
def ring() -> Ring:
    return Ring(**RING_PAPER)


@pytest.fixture
def linear() -> Linear:
    """Three particles in d = 2, trap and springs, far from equilibrium (v0 large, γ ≠ ε)."""
    return Linear(mu=1.0, v0=0.8, gamma=0.5, eps=0.2, trap=1.0, spring=0.3, n_particles=3, dim=2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
