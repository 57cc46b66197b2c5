"""The athermal systems whose s_g alone is learned (MIPS and the active solid), by name, and the force on
every particle of their snapshots (the input of a score fed the force imbalance)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from activeflow.numerics.mips_sampling import make_mips
from activeflow.physics.lattice import lattice_side, make_lattice
from activeflow.physics.systems import AOUPSystem

SYSTEMS = ("mips", "lattice")


def athermal_system(system: str, parameters: dict[str, Any], force_tolerance: float = 1e-6,
                    n_particles: int | None = None, phi: float | None = None) -> AOUPSystem:
    """The MIPS system (at another N or φ if given) or the active solid (at another N = n² if given)."""
    if system == "mips":
        return make_mips(parameters, dict(force_tolerance=force_tolerance), n_particles, phi)
    if system == "lattice":
        return make_lattice(parameters, None if n_particles is None else lattice_side(n_particles))
    raise ValueError(f"system={system!r}; allowed: {list(SYSTEMS)}")


def snapshot_forces(system: AOUPSystem, x: np.ndarray) -> jax.Array:
    """The force on every particle of each snapshot (S, N, d), computed in the precision the positions
    were stored in, returned as float32. The solid is simulated in float64: its bonds are differences of
    coordinates of order the box, whose float32 round-off, divided by the imbalance width η, would be
    percent-level noise in the network's inputs."""
    x = np.asarray(x)
    with jax.enable_x64(x.dtype == np.float64):
        force = jax.jit(system.force)
        return jnp.asarray(np.stack([np.asarray(force(jnp.asarray(s))) for s in x]), jnp.float32)
