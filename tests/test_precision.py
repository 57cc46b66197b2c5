"""Evaluation stages trace their matrix products at full float32 precision (TF32 on GPUs otherwise)."""

import jax
import jax.numpy as jnp
import pytest

from activeflow import attention, epr, maps, mips_epr
from activeflow.precision import full_precision


def lowered_matmul() -> str:
    a = jnp.ones((4, 4), jnp.float32)
    return jax.jit(lambda a, b: a @ b).lower(a, a).as_text()


def test_full_precision_reaches_the_compiled_products():
    assert "HIGHEST" not in lowered_matmul()
    assert "HIGHEST" in full_precision(lowered_matmul)()
    assert "HIGHEST" not in lowered_matmul()  # restored afterwards


@pytest.mark.parametrize("stage", [epr.run, maps.run, attention.run, mips_epr.run],
                         ids=["epr", "maps", "attention", "mips_epr"])
def test_every_evaluation_stage_runs_at_full_precision(stage):
    assert getattr(stage, "full_precision", False)
