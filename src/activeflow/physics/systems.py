"""AOUP systems: drift b(r), constant diagonal diffusion D, analytic drift divergence, Boltzmann score.

A state is one snapshot (x, g), each of shape (N, d). Every system has the form (1)
    dx = [μ F(x) + v0 g] dt + √(2 D_x) dW,    dg = −γ g dt + √(2 D_g) dW',
with F = −∇Φ the conservative force per particle. Subclasses give F, its per-particle divergence,
the diffusion constants and the geometry.
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from activeflow.physics.forces import soft_disk_force, soft_disk_force_divergence, soft_disk_pair_forces
from activeflow.physics.space import minimum_image

Snapshot = Float[Array, "N d"]


class AOUPSystem(eqx.Module):
    """Common parts of every active Ornstein–Uhlenbeck system; parameters are static (not learned)."""

    mu: float = eqx.field(static=True)
    v0: float = eqx.field(static=True)
    gamma: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    n_particles: eqx.AbstractVar[int]
    dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def force(self, x: Snapshot) -> Snapshot:
        """Conservative force F = −∇Φ on each particle."""

    @abc.abstractmethod
    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        """∇_{x^i}·F^i for each particle i (minus the Laplacian of Φ restricted to particle i)."""

    @property
    def Dx(self) -> float:
        return self.eps

    @property
    def Dg(self) -> float:
        return self.gamma

    @property
    def box(self) -> float | None:
        """Side of the periodic box, or None for open space."""
        return None

    def wrap(self, x: Float[Array, "*S N d"]) -> Float[Array, "*S N d"]:
        return x if self.box is None else minimum_image(x, self.box)

    def drift(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        return self.mu * self.force(x) + self.v0 * g, -self.gamma * g

    def drift_divergence(self, x: Snapshot, g: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """Per-particle (∇_{x^i}·b_x^i, ∇_{g^i}·b_g^i), analytic."""
        div_x = self.mu * self.force_divergence(x)
        div_g = jnp.full(x.shape[0], -self.gamma * x.shape[1])
        return div_x, div_g

    def boltzmann_score(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        """Score at v0 = 0 (98): ρ ∝ exp(−μΦ/D_x) exp(−γ|g|²/2D_g), so s = D⁻¹ b|_{v0=0}."""
        return self.mu * self.force(x) / self.Dx, -self.gamma * g / self.Dg

    def boltzmann_score_divergence(self, x: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """Per-particle (∇_{x^i}·s_x^i, ∇_{g^i}·s_g^i) of `boltzmann_score`, analytic."""
        div_x = self.mu * self.force_divergence(x) / self.Dx
        div_g = jnp.full(x.shape[0], -self.gamma * x.shape[1] / self.Dg)
        return div_x, div_g

    def stationary_g_std(self) -> float:
        """g is an OU process independent of x: stationary variance D_g/γ per component."""
        return (self.Dg / self.gamma) ** 0.5

    def initial_state(self, key: jax.Array, n: int) -> tuple[Float[Array, "n N d"], Float[Array, "n N d"]]:
        """n independent starting snapshots: g from its stationary law, x from `initial_positions`."""
        kx, kg = jax.random.split(key)
        shape = (n, self.n_particles, self.dim)
        g = self.stationary_g_std() * jax.random.normal(kg, shape)
        return self.initial_positions(kx, n), g

    @abc.abstractmethod
    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        """Starting positions before burn-in."""


class Ring(AOUPSystem):
    """Two particles on a ring of length L in displacement coordinates (97):
    x = x¹ − x², g = g¹ − g², b = (2μ f(x) + v0 g, −γ g), D = diag(2ε, 2γ); one 'particle' in d = 1."""

    a: float = eqx.field(static=True)
    k: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    n_particles: int = eqx.field(static=True, default=1)
    dim: int = eqx.field(static=True, default=1)

    @property
    def Dx(self) -> float:
        return 2 * self.eps

    @property
    def Dg(self) -> float:
        return 2 * self.gamma

    @property
    def box(self) -> float:
        return self.length

    def force(self, x: Snapshot) -> Snapshot:
        # Each particle feels f from its partner; the displacement feels the difference, 2 f(x).
        return 2 * soft_disk_force(minimum_image(x, self.length), self.a, self.k, self.beta)

    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        return 2 * soft_disk_force_divergence(minimum_image(x, self.length), self.a, self.k, self.beta)

    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        return jax.random.uniform(key, (n, 1, 1), minval=-self.length / 2, maxval=self.length / 2)


class Linear(AOUPSystem):
    """N AOUPs in a harmonic trap A with harmonic springs k between all pairs:
    Φ = A/2 Σ|x^i|² + k/2 Σ_{i<j}|x^i − x^j|². The SDE is linear, so ρ is Gaussian (see `linear`)."""

    trap: float = eqx.field(static=True)
    spring: float = eqx.field(static=True)
    n_particles: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def force(self, x: Snapshot) -> Snapshot:
        n = x.shape[0]
        return -self.trap * x - self.spring * (n * x - jnp.sum(x, axis=0, keepdims=True))

    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        n, d = x.shape
        return jnp.full(n, -d * (self.trap + self.spring * (n - 1)))

    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        return jax.random.normal(key, (n, self.n_particles, self.dim)) / jnp.sqrt(self.trap)


class Trap(AOUPSystem):
    """N AOUPs in d dimensions in a harmonic trap A with the smoothed soft-disk repulsion (95) between
    all pairs (§6.1, potential (27)): F^i = −A x^i + Σ_{j≠i} f(x^i − x^j). Open space, D_x = ε, D_g = γ.

    All N² pairs are summed (fine for N = 64); the diagonal i = j is masked before the norm is taken,
    so forward- and reverse-mode derivatives stay finite."""

    a: float = eqx.field(static=True)
    k: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    trap: float = eqx.field(static=True)
    n_particles: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def _pairs(self, x: Snapshot) -> tuple[Float[Array, "N N d"], Bool[Array, "N N 1"]]:
        """Displacements x^i − x^j with the diagonal replaced by a harmless non-zero vector, and the mask."""
        self_pair = jnp.eye(x.shape[0], dtype=bool)[..., None]
        dx = x[:, None, :] - x[None, :, :]
        # |0| has a NaN derivative even along a zero tangent: never take the norm of the diagonal.
        return jnp.where(self_pair, jnp.ones_like(dx), dx), self_pair

    def force(self, x: Snapshot) -> Snapshot:
        return -self.trap * x + soft_disk_pair_forces(x, self.a, self.k, self.beta)

    def force_divergence(self, x: Snapshot) -> Float[Array, " N"]:
        dx, self_pair = self._pairs(x)
        pair = jnp.where(self_pair[..., 0], 0.0, soft_disk_force_divergence(dx, self.a, self.k, self.beta))
        return -self.trap * x.shape[1] + pair.sum(axis=1)

    def initial_positions(self, key: jax.Array, n: int) -> Float[Array, "n N d"]:
        """Uniform in a ball of radius a(2N)^{1/d} around the trap centre (packing fraction 1/2 in d = 2);
        burn-in does the rest."""
        kdir, krad = jax.random.split(key)
        shape = (n, self.n_particles, self.dim)
        direction = jax.random.normal(kdir, shape)
        direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
        radius = self.a * (2.0 * self.n_particles) ** (1.0 / self.dim)
        r = radius * jax.random.uniform(krad, (*shape[:-1], 1)) ** (1.0 / self.dim)
        return r * direction


SYSTEMS: dict[str, type[AOUPSystem]] = {"ring": Ring, "linear": Linear, "trap": Trap}


def make_system(kind: str, parameters: dict[str, Any]) -> AOUPSystem:
    """Build a system from its config name and parameter dict (keys as in config/README.md)."""
    if kind not in SYSTEMS:
        raise ValueError(f"unknown system {kind!r}; allowed: {sorted(SYSTEMS)}")
    cls = SYSTEMS[kind]
    params = dict(parameters)
    if kind == "ring":
        params["length"] = params.pop("L")
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"bad parameters for system {kind!r}: {err}") from None
