"""The number of CPU threads a stage may use (the rule's `threads:`), given to XLA's CPU thread pool and
to the BLAS libraries, so that jobs run side by side do not oversubscribe the cores."""

import logging
import os

import threadpoolctl
from jax._src import xla_bridge

log = logging.getLogger(__name__)

# OpenMP/BLAS libraries loaded later (and subprocesses) read these
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit(n: int) -> None:
    """Use `n` threads from now on. XLA sizes its CPU thread pool from NPROC when JAX starts its backend,
    so this must come before the stage's first JAX computation (importing the library starts none)."""
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    os.environ["NPROC"] = str(n)
    for name in BLAS_VARIABLES:
        os.environ[name] = str(n)
    threadpoolctl.threadpool_limits(n)
    if xla_bridge.backends_are_initialized():
        log.warning("JAX had already started: its CPU thread pool keeps its size (not %d threads)", n)
    else:
        log.info("using %d CPU thread%s (XLA and BLAS)", n, "s" * (n > 1))
