"""Network evaluation traces its matrix products at full float32 precision (TF32 on GPUs otherwise)."""

import jax
import jax.numpy as jnp
import pytest

from activeflow.analysis import attention, mips_fields
from activeflow.numerics import flow
from activeflow.numerics.precision import full_precision


def lowered_matmul() -> str:
    a = jnp.ones((4, 4), jnp.float32)
    return jax.jit(lambda a, b: a @ b).lower(a, a).as_text()


def test_full_precision_reaches_the_compiled_products():
    assert "HIGHEST" not in lowered_matmul()
    assert "HIGHEST" in full_precision(lowered_matmul)()
    assert "HIGHEST" not in lowered_matmul()  # restored afterwards


# Where the stages (and a notebook) evaluate a network: epr.nc and the phase-space maps through
# flow.evaluate_fields, the MIPS fields, the attention maps.
EVALUATION = {
    "flow.evaluate_fields": flow.evaluate_fields, "mips_fields.particle_fields": mips_fields.particle_fields,
    "attention.rollout_dataset": attention.rollout_dataset,
}


@pytest.mark.parametrize("name", EVALUATION)
def test_every_evaluation_entry_point_runs_at_full_precision(name):
    assert getattr(EVALUATION[name], "full_precision", False)
