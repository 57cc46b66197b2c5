"""Full float32 precision of matrix products for evaluation (the numbers we report).

On a GPU, JAX's default precision for float32 matrix products may use TF32 (10-bit mantissa), which
moves the per-particle scores and divergences measurably (benchmarks/matmul_precision.py,
docs/performance.md). Training keeps the default (faster, and the gradient noise is far larger);
evaluation does not: flow.evaluate_fields (epr.nc, the phase-space maps), mips_fields.particle_fields and
attention.rollout_dataset, from a stage or a notebook. On a CPU this changes nothing: XLA-CPU computes
float32 products in full precision anyway."""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import jax

EVALUATION_PRECISION = "highest"

P = ParamSpec("P")
R = TypeVar("R")


def full_precision(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` with every matrix product it traces at full float32 precision."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with jax.default_matmul_precision(EVALUATION_PRECISION):
            return fn(*args, **kwargs)

    wrapper.full_precision = True  # type: ignore[attr-defined]  (so that tests can find the evaluation functions)
    return wrapper
