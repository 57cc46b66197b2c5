"""The athermal systems whose s_g alone is learned (MIPS and the active solid), by name, and the force on
every particle of their snapshots (the input of a score fed the force imbalance)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from activeflow.numerics.mips_sampling import make_mips
from activeflow.physics.lattice import Lattice, make_lattice
from activeflow.physics.systems import AOUPSystem

SYSTEMS = ("mips", "lattice")


def athermal_system(system: str, parameters: dict[str, Any], force_tolerance: float = 1e-6,
                    n_particles: int | None = None, phi: float | None = None) -> AOUPSystem:
    """The MIPS system (at another N or φ if given) or the active solid (at another N = n² if given)."""
    if system == "mips":
        return make_mips(parameters, dict(force_tolerance=force_tolerance), n_particles, phi)
    if system == "lattice":
        side = None if n_particles is None else int(round(n_particles**0.5))
        return make_lattice(parameters, side)
    raise ValueError(f"system={system!r}; allowed: {list(SYSTEMS)}")


def snapshot_forces(system: AOUPSystem, x: np.ndarray) -> jax.Array:
    """The force on every particle of each snapshot (S, N, d), as float32. The solid's is computed from
    float64 positions: its bonds are differences of coordinates of order the box, whose float32 round-off,
    divided by the imbalance width η, would be percent-level noise in the network's inputs."""
    if isinstance(system, Lattice):
        with jax.enable_x64(True):
            force = jax.jit(system.force)
            return jnp.asarray(np.stack([np.asarray(force(jnp.asarray(s, jnp.float64))) for s in x]), jnp.float32)
    force = jax.jit(system.force)
    return jnp.stack([force(s) for s in jnp.asarray(x, jnp.float32)])
