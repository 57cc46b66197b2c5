"""Pair forces: the smoothed soft-disk repulsion (95), its divergence and cut-off, and the hard disk (94)."""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def softplus(z: Float[Array, "..."], beta: float) -> Float[Array, "..."]:
    """softplus_β(z) = log(1 + e^{βz}) / β, computed without overflow."""
    return jax.nn.softplus(beta * z) / beta


def soft_disk_force_scale(r: Float[Array, "..."], a: float, k: float, beta: float) -> Float[Array, "..."]:
    """|f|/r of the force (95) at distance r, so that f(dx) = scale·dx: k softplus_β(2a − r)/r (the
    division guarded at r = 0, where dx = 0, so that gradients stay finite)."""
    return k * softplus(2 * a - r, beta) / jnp.where(r > 0, r, 1.0)


def soft_disk_divergence_of_distance(
    r: Float[Array, "..."], a: float, k: float, beta: float, d: int
) -> Float[Array, "..."]:
    """∇·f at distance r in d dimensions: k[−σ(β(2a − r)) + softplus_β(2a − r)(d − 1)/r] (r guarded
    at 0 as above)."""
    angular = soft_disk_force_scale(r, a, k, beta) * (d - 1)
    return -k * jax.nn.sigmoid(beta * (2 * a - r)) + angular


def soft_disk_force(
    dx: Float[Array, "*batch d"], a: float, k: float, beta: float
) -> Float[Array, "*batch d"]:
    """Smoothed repulsion (95) on a particle displaced by dx from its partner:
    f(dx) = k softplus_β(2a − |dx|) dx/|dx|."""
    r = jnp.linalg.norm(dx, axis=-1, keepdims=True)
    return soft_disk_force_scale(r, a, k, beta) * dx


def soft_disk_pair_forces(x: Float[Array, "N d"], a: float, k: float, beta: float) -> Float[Array, "N d"]:
    """Σ_{j≠i} f(x^i − x^j) for every particle, over all N² pairs. The diagonal is replaced by a harmless
    non-zero displacement before the norm is taken (|0| has a NaN derivative even along a zero tangent)
    and masked out of the sum, so forward- and reverse-mode derivatives stay finite."""
    self_pair = jnp.eye(x.shape[0], dtype=bool)[..., None]
    dx = x[:, None, :] - x[None, :, :]
    dx = jnp.where(self_pair, jnp.ones_like(dx), dx)
    return jnp.where(self_pair, 0.0, soft_disk_force(dx, a, k, beta)).sum(axis=1)


def soft_disk_force_divergence(
    dx: Float[Array, "*batch d"], a: float, k: float, beta: float
) -> Float[Array, " *batch"]:
    """∇·f for the force above (`soft_disk_divergence_of_distance` at r = |dx|)."""
    return soft_disk_divergence_of_distance(jnp.linalg.norm(dx, axis=-1), a, k, beta, dx.shape[-1])


def hard_disk_force(dx: Float[Array, "*batch d"], a: float, k: float) -> Float[Array, "*batch d"]:
    """The unsmoothed force (94), k(2a − |dx|) dx/|dx| Θ(2a − |dx|), for comparison (Fig. 12)."""
    r = jnp.linalg.norm(dx, axis=-1, keepdims=True)
    safe_r = jnp.where(r > 0, r, 1.0)
    return k * jnp.clip(2 * a - r, 0.0, None) * dx / safe_r


def soft_disk_cutoff(a: float, k: float, beta: float, tolerance: float) -> float:
    """Distance 2a + c beyond which the smoothed force (95) is below `tolerance` in magnitude.

    |f| = k softplus_β(2a − r) decreases with r, so solving |f| = tolerance exactly gives the cut-off:
    r_c = 2a − log(expm1(β·tol/k))/β ≈ 2a + log(k/(β·tol))/β, the tail being ≈ k e^{−β(r−2a)}/β.
    Summed over a local number density n, the force dropped per particle is about 2π n r_c tol/β."""
    if not tolerance > 0:
        raise ValueError(f"force tolerance must be positive, got {tolerance}")
    return 2 * a - math.log(math.expm1(beta * tolerance / k)) / beta
