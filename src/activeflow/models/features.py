"""Physics features of particles in open space (the trap, the linear system), the score that is linear in
them, and a network that makes their coefficients depend on each particle's surroundings.

For particle i the features are vectors in R^d, each equivariant under rotations of the snapshot and
under permutations of the particles:
- x^i, g^i and the sums Σ_j x^j, Σ_j g^j (`single`);
- for soft disks, the pair force F^i = Σ_j f(r_ij) e_ij (e_ij = (x^i − x^j)/r_ij), and for each radial
  function B of a basis (Gaussians in the pair distance r_ij, and the force magnitude |f|(r) itself):
      Σ_j B e_ij,  (Σ_j B) g^i,  Σ_j B g^j,  Σ_j B e_ij (e_ij·g^i),  Σ_j B e_ij (e_ij·g^j),
  and with `forces` the same four tensor forms applied to the pair forces F^i and F^j, the terms through
  which the pair stiffness acts on the force balance v0 g + μF of neighbouring particles;
- with `products`, every feature above also multiplied by each of the particle's `invariants`
  (local densities, |g^i|², g^i·F^i, |F^i|²).

A score linear in them, s_x^i = Σ_k θ_x,k φ_k^i and s_g^i = Σ_k θ_g,k φ_k^i, contains the Boltzmann
score (x, F and g enter) and, for the linear system with springs between all pairs, its exact Gaussian
score (x, g and their sums, by permutation symmetry). The score-matching loss (22) is quadratic in θ, so
its minimiser over the training snapshots is one linear solve (`fit_linear_features`), with a ridge
chosen by cross-validation over replicas: no gradient descent.

Per-particle divergences are exact and cheap: particle i's features depend on x^i only through its own
position and the pairs (i, j) (also inside F^j), so the d×d Jacobian block of particle i is a
forward-mode derivative with respect to its own coordinates, O(N·d) per particle, O(N²·d) per snapshot.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from activeflow.physics.forces import soft_disk_force, soft_disk_pair_forces, softplus
from activeflow.physics.systems import AOUPSystem

Snapshot = Float[Array, "N d"]
Features = Float[Array, "N K d"]
Vector = Float[Array, " d"]

SINGLE = ("x", "g", "x_sum", "g_sum")  # the features that are not pair sums over a radial basis
# Centres of the local densities among the invariants (pair distances, in units of the radius a).
DENSITY_CENTRES, DENSITY_WIDTH = (1.6, 2.0, 2.4), 0.4
N_INVARIANTS = len(DENSITY_CENTRES) + 3
RIDGES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # candidates for the cross-validated ridge, relative to tr G / K


class PairFeatures(eqx.Module):
    """The feature map of one snapshot (N, d) → (N, K, d); see the module docstring."""

    single: tuple[str, ...] = eqx.field(static=True)
    n_radial: int = eqx.field(static=True)
    r_min: float = eqx.field(static=True)
    r_max: float = eqx.field(static=True)
    forces: bool = eqx.field(static=True, default=False)
    products: bool = eqx.field(static=True, default=False)
    a: float | None = eqx.field(static=True, default=None)
    k: float | None = eqx.field(static=True, default=None)
    beta: float | None = eqx.field(static=True, default=None)

    @classmethod
    def for_system(cls, system: AOUPSystem, n_radial: int, r_min: float, r_max: float,
                   single: tuple[str, ...] = SINGLE, forces: bool = False, products: bool = False) -> "PairFeatures":
        if system.box is not None:
            raise ValueError("linear features are defined in open space (trap, linear), not in a periodic box")
        unknown = set(single) - set(SINGLE)
        if unknown:
            raise ValueError(f"unknown single features {sorted(unknown)}; allowed: {list(SINGLE)}")
        disks = {name: getattr(system, name, None) for name in ("a", "k", "beta")}
        if disks["a"] is None and (forces or products):
            raise ValueError("the pair-force features and the products need soft disks (a trap system)")
        return cls(tuple(single), int(n_radial), float(r_min), float(r_max), bool(forces), bool(products), **disks)

    @property
    def has_disks(self) -> bool:
        return self.a is not None

    @property
    def n_features(self) -> int:
        return len(self.names())

    def names(self) -> list[str]:
        """Readable names of the K features, in order."""
        out = list(self.single) + (["pair_force"] * self.has_disks)
        radial = [f"gauss{m}" for m in range(self.n_radial)] + (["force"] * self.has_disks if self.n_radial else [])
        forms = ["e", "g_self", "g_other", "e(e.g_self)", "e(e.g_other)"]
        if self.forces:
            forms += ["F_self", "e(e.F_self)", "F_other", "e(e.F_other)"]
        out += [f"{b}:{form}" for b in radial for form in forms]
        if self.products:
            out += [f"{name}*z{m}" for m in range(N_INVARIANTS) for name in list(out)]
        return out

    def pair_forces(self, x: Snapshot) -> Snapshot:
        """Σ_j f(x^i − x^j) for every particle (zeros without soft disks)."""
        if not self.has_disks:
            return jnp.zeros_like(x)
        return soft_disk_pair_forces(x, self.a, self.k, self.beta)

    def _pairs(self, xi: Vector, x: Snapshot, i: jax.Array):
        others = jnp.arange(x.shape[0]) != i
        dx = jnp.where(others[:, None], xi[None, :] - x, 1.0)  # the self pair: a harmless unit vector
        r = jnp.linalg.norm(dx, axis=-1)
        return others, dx / r[:, None], r

    def invariants(self, xi: Vector, gi: Vector, x: Snapshot, i: jax.Array) -> Float[Array, " n_invariants"]:
        """Rotation-invariant scalars of particle i's surroundings, each of order one: local densities
        (Gaussian shells in r_ij), |g^i|²/2 − 1, g^i·F^i/2, |F^i|²/2."""
        others, e, r = self._pairs(xi, x, i)
        shells = [jnp.where(others, jnp.exp(-0.5 * ((r - c) / DENSITY_WIDTH) ** 2), 0.0).sum() / 3
                  for c in DENSITY_CENTRES]
        force = jnp.where(others, self.k * softplus(2 * self.a - r, self.beta), 0.0) @ e
        return jnp.stack(shells + [gi @ gi / 2 - 1.0, gi @ force / 2, force @ force / 2])

    def particle(self, xi: Vector, gi: Vector, x: Snapshot, g: Snapshot, i: jax.Array,
                 forces: Snapshot) -> Float[Array, "K d"]:
        """Features of particle i at (xi, gi), the others at x, g with pair forces `forces` (row i of
        x, g is ignored, and the others' forces are corrected for particle i at xi)."""
        others, e, r = self._pairs(xi, x, i)
        x_sum = jnp.sum(jnp.where(others[:, None], x, 0.0), axis=0) + xi  # the sums include particle i
        g_sum = jnp.sum(jnp.where(others[:, None], g, 0.0), axis=0) + gi
        feats = [dict(x=xi, g=gi, x_sum=x_sum, g_sum=g_sum)[name] for name in self.single]
        radial = []
        if self.has_disks:
            magnitude = jnp.where(others, self.k * softplus(2 * self.a - r, self.beta), 0.0)
            own_force = magnitude @ e
            feats.append(own_force)
        if self.n_radial:
            centres = np.linspace(self.r_min, self.r_max, self.n_radial)
            width = (self.r_max - self.r_min) / max(self.n_radial - 1, 1)
            radial = [jnp.where(others, jnp.exp(-0.5 * ((r - c) / width) ** 2), 0.0) for c in centres]
            if self.has_disks:
                radial.append(magnitude)
        if self.forces and radial:
            # the others' forces, with their pair with particle i taken at xi
            pair = lambda at: soft_disk_force(jnp.where(others[:, None], x - at[None, :], 1.0),  # noqa: E731
                                              self.a, self.k, self.beta)
            forces_j = forces + jnp.where(others[:, None], pair(xi) - pair(x[i]), 0.0)
        along_g_self, along_g_other = e @ gi, jnp.sum(e * g, axis=-1)
        for b in radial:
            feats += [b @ e, b.sum() * gi, b @ g, (b * along_g_self) @ e, (b * along_g_other) @ e]
            if self.forces:
                feats += [b.sum() * own_force, (b * (e @ own_force)) @ e, b @ forces_j,
                          (b * jnp.sum(e * forces_j, axis=-1)) @ e]
        if self.products:
            z = self.invariants(xi, gi, x, i)
            base = list(feats)
            feats += [z[m] * f for m in range(N_INVARIANTS) for f in base]
        return jnp.stack(feats)

    def __call__(self, x: Snapshot, g: Snapshot) -> Features:
        index = jnp.arange(x.shape[0])
        return jax.vmap(self.particle, (0, 0, None, None, 0, None))(x, g, x, g, index, self.pair_forces(x))

    def divergences(self, x: Snapshot, g: Snapshot) -> tuple[Float[Array, "N K"], Float[Array, "N K"]]:
        """(∇_{x^i}·φ_k^i, ∇_{g^i}·φ_k^i) for every particle i and feature k, exact."""
        index, forces = jnp.arange(x.shape[0]), self.pair_forces(x)
        axes = (0, 0, None, None, 0, None)
        jac_x = jax.vmap(jax.jacfwd(self.particle, 0), axes)(x, g, x, g, index, forces)
        jac_g = jax.vmap(jax.jacfwd(self.particle, 1), axes)(x, g, x, g, index, forces)
        return jnp.trace(jac_x, axis1=-2, axis2=-1), jnp.trace(jac_g, axis1=-2, axis2=-1)


class RingFeatures(eqx.Module):
    """Periodic features of the ring's displacement (one 'particle', d = 1): the force 2f(x), g, and
    sin(2πmx/L), cos(2πmx/L) for m = 1..n_modes, each also times g. A score linear in them contains the
    Boltzmann score (the force and g enter)."""

    system: AOUPSystem
    n_modes: int = eqx.field(static=True, default=4)

    @property
    def n_features(self) -> int:
        return 2 + 4 * self.n_modes

    def _one(self, xi: Vector, gi: Vector) -> Float[Array, "K 1"]:
        phase = 2 * jnp.pi * xi[0] * jnp.arange(1, self.n_modes + 1) / self.system.box
        waves = jnp.concatenate([jnp.sin(phase), jnp.cos(phase)])
        force = self.system.force(xi[None, :])[0]
        return jnp.concatenate([force, gi, waves, gi[0] * waves])[:, None]

    def __call__(self, x: Snapshot, g: Snapshot) -> Features:
        return jax.vmap(self._one)(x, g)

    def divergences(self, x: Snapshot, g: Snapshot) -> tuple[Float[Array, "N K"], Float[Array, "N K"]]:
        jac_x = jax.vmap(jax.jacfwd(self._one, 0))(x, g)
        jac_g = jax.vmap(jax.jacfwd(self._one, 1))(x, g)
        return jnp.trace(jac_x, axis1=-2, axis2=-1), jnp.trace(jac_g, axis1=-2, axis2=-1)


def default_features(system: AOUPSystem) -> eqx.Module:
    """The features of the zero-training baseline (`linear_features` in epr_summary.csv): periodic modes
    for the ring; x, g and their sums for the linear system; for soft disks in a trap also the pair
    sums over 8 radial functions between 1.2a and 2.8a, with the pair-force terms."""
    if system.box is not None:
        return RingFeatures(system)
    if getattr(system, "a", None) is None:
        return PairFeatures.for_system(system, 0, 1.0, 2.0)
    return PairFeatures.for_system(system, 8, 1.2 * system.a, 2.8 * system.a, forces=True)


class LinearFeatureScore(eqx.Module):
    """s_x^i = Σ_k θ_x,k φ_k^i, s_g^i = Σ_k θ_g,k φ_k^i, with its exact per-particle divergences."""

    features: eqx.Module  # PairFeatures or RingFeatures
    theta_x: Float[Array, " K"]
    theta_g: Float[Array, " K"]

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        phi = self.features(x, g)
        return jnp.einsum("k,nkd->nd", self.theta_x, phi), jnp.einsum("k,nkd->nd", self.theta_g, phi)

    def divergence(self, x: Snapshot, g: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """(∇_{x^i}·s_x^i, ∇_{g^i}·s_g^i) per particle, exact."""
        div_x, div_g = self.features.divergences(x, g)
        return div_x @ self.theta_x, div_g @ self.theta_g


class GatedFeatureNet(eqx.Module):
    """A correction whose coefficients depend on the particle's surroundings: for particle i,
    s^i = Σ_k c_k(z^i) φ_k^i with z^i its `invariants` and c an MLP (last layer zero at the start, so a
    model starts from its prior). Local: s^i depends on particle i's pairs only, so its exact
    per-particle divergence costs d forward-mode products per particle (`particle_fields`)."""

    features: PairFeatures
    gate: eqx.nn.MLP

    def __init__(self, features: PairFeatures, width: int, depth: int, *, key: PRNGKeyArray):
        if not features.has_disks:
            raise ValueError("the gated feature network needs soft disks (a trap system)")
        self.features = features
        gate = eqx.nn.MLP(N_INVARIANTS, 2 * features.n_features, width, depth, activation=jax.nn.gelu, key=key)
        last = gate.layers[-1]
        self.gate = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), gate,
                                (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))

    def particle(self, xi: Vector, gi: Vector, x: Snapshot, g: Snapshot, i: jax.Array,
                 forces: Snapshot) -> Float[Array, " 2*d"]:
        """(s_x^i, s_g^i) concatenated."""
        phi = self.features.particle(xi, gi, x, g, i, forces)
        c = self.gate(self.features.invariants(xi, gi, x, i))
        k = phi.shape[0]
        return jnp.concatenate([c[:k] @ phi, c[k:] @ phi])

    def particle_fields(self, x: Snapshot, g: Snapshot):
        """(s_x, s_g, ∇_{x^i}·s_x^i, ∇_{g^i}·s_g^i), exact."""
        return local_fields(self.particle, self.features.pair_forces(x), x, g)

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        index = jnp.arange(x.shape[0])
        s = jax.vmap(self.particle, (0, 0, None, None, 0, None))(x, g, x, g, index, self.features.pair_forces(x))
        return s[:, : x.shape[1]], s[:, x.shape[1]:]


def local_fields(particle, forces: Snapshot, x: Snapshot, g: Snapshot):
    """Scores and exact per-particle divergences of a local score: `particle(xi, gi, x, g, i, forces)`
    returns (s_x^i, s_g^i) concatenated and depends on x^i, g^i only through its first two arguments."""
    d = x.shape[1]
    index = jnp.arange(x.shape[0])

    def one(xi, gi, i):
        s = particle(xi, gi, x, g, i, forces)
        jx = jax.jacfwd(particle, 0)(xi, gi, x, g, i, forces)
        jg = jax.jacfwd(particle, 1)(xi, gi, x, g, i, forces)
        return s, jnp.trace(jx[:d]), jnp.trace(jg[d:])

    s, div_x, div_g = jax.vmap(one)(x, g, index)
    return s[:, :d], s[:, d:], div_x, div_g


@eqx.filter_jit
def _moments(features: eqx.Module, anchor, x: Float[Array, "B N d"], g: Float[Array, "B N d"]):
    """Per snapshot: the Gram matrix Σ_i φ_k^i·φ_l^i, the full divergences Σ_i ∇_{x^i}·φ_k^i and
    Σ_i ∇_{g^i}·φ_k^i, and the projections Σ_i φ_k^i·a^i of the anchor score a = (a_x, a_g)."""

    def one(xs, gs):
        phi = features(xs, gs)
        div_x, div_g = features.divergences(xs, gs)
        a_x, a_g = anchor(xs, gs)
        return (jnp.einsum("nkd,nld->kl", phi, phi), div_x.sum(0), div_g.sum(0),
                jnp.einsum("nkd,nd->k", phi, a_x), jnp.einsum("nkd,nd->k", phi, a_g))

    return jax.vmap(one)(x, g)


def feature_moments(features: eqx.Module, anchor, x: np.ndarray, g: np.ndarray, chunk: int = 32):
    """Per snapshot, in float64: Gram matrices (S, K, K), divergences (S, K) in x and in g, and the
    anchor's projections (S, K) in x and in g."""
    parts = [_moments(features, anchor, jnp.asarray(x[s:s + chunk]), jnp.asarray(g[s:s + chunk]))
             for s in range(0, x.shape[0], chunk)]
    return tuple(np.concatenate([np.asarray(p[n], np.float64) for p in parts]) for n in range(5))


class Fit(NamedTuple):
    """Sums over the snapshots of one fold of the data: what a fit and its score-matching loss need."""

    gram: np.ndarray
    h_x: np.ndarray
    h_g: np.ndarray
    a_x: np.ndarray
    a_g: np.ndarray

    def mean(self, rows) -> "Fit":
        return Fit(*(a[rows].mean(0) for a in self))


def _solve(m: Fit, ridge: float, towards_anchor: bool) -> tuple[np.ndarray, np.ndarray]:
    """θ = θ_a + δ with θ_a the anchor's least-squares coefficients (or zero) and
    δ = −(G + λ)⁻¹(G θ_a + h): the score-matching minimiser with a ridge that pulls towards θ_a."""
    k = len(m.gram)
    regular = m.gram + ridge * np.trace(m.gram) / k * np.eye(k)
    out = []
    for h, a in ((m.h_x, m.a_x), (m.h_g, m.a_g)):
        anchor = np.linalg.lstsq(m.gram, a, rcond=None)[0] if towards_anchor else np.zeros(k)
        out.append(anchor - np.linalg.solve(regular, m.gram @ anchor + h))
    return out[0], out[1]


def _loss(m: Fit, theta_x: np.ndarray, theta_g: np.ndarray) -> float:
    return float(theta_x @ m.gram @ theta_x + 2 * theta_x @ m.h_x + theta_g @ m.gram @ theta_g + 2 * theta_g @ m.h_g)


def cross_validated_ridge(moments: Fit, groups: np.ndarray, ridges=RIDGES, anchors=(False, True),
                          folds: int = 5) -> tuple[tuple[float, bool], dict]:
    """The (ridge, towards_anchor) whose fits on all but one fold of the groups (replicas) score best on
    the held-out fold, by the score-matching loss θᵀGθ + 2θᵀh summed over s_x and s_g; and every
    candidate's loss."""
    fold = np.unique(groups, return_inverse=True)[1] % folds
    losses = {}
    for candidate in ((ridge, pull) for pull in anchors for ridge in ridges):
        losses[candidate] = sum(_loss(moments.mean(fold == f), *_solve(moments.mean(fold != f), *candidate))
                                for f in range(min(folds, int(fold.max()) + 1)))
    return min(losses, key=losses.get), losses


def fit_linear_features(features: eqx.Module, x: np.ndarray, g: np.ndarray, groups: np.ndarray | None = None,
                        ridge: float | None = None, anchor=None) -> tuple[LinearFeatureScore, dict]:
    """The minimiser of the score-matching loss E[|s|² + 2∇·s] over linear feature scores, on the
    snapshots x, g (S, N, d): with G = E[Σ_i φ^i φ^iᵀ] and h = E[∇·φ], θ = −G⁻¹h for s_x and s_g, in
    float64, regularised by a ridge λ (relative to tr G / K) that pulls θ towards zero or towards the
    least-squares coefficients of `anchor(x, g) -> (a_x, a_g)` (for a prior, the system's Boltzmann
    score: at v0 = 0 the fit then stays at the exact score instead of fitting noise). λ is `ridge` (pulled
    towards the anchor if one is given), or else λ and the pull are chosen together by 5-fold
    cross-validation over `groups` (the replica of each snapshot; each snapshot its own group if None).
    Returns the score and a report (ridge, towards_anchor, cross-validation losses, K, snapshots)."""
    zero = lambda xs, gs: (jnp.zeros_like(xs), jnp.zeros_like(gs))  # noqa: E731
    moments = Fit(*feature_moments(features, anchor or zero, x, g))
    losses, pull = {}, anchor is not None
    if ridge is None:
        groups = np.arange(x.shape[0]) if groups is None else np.asarray(groups)
        (ridge, pull), losses = cross_validated_ridge(moments, groups, anchors=(False, True) if pull else (False,))
    theta_x, theta_g = _solve(moments.mean(slice(None)), ridge, pull)
    dtype = jnp.asarray(x[:1]).dtype
    score = LinearFeatureScore(features, jnp.asarray(theta_x, dtype), jnp.asarray(theta_g, dtype))
    return score, dict(ridge=ridge, towards_anchor=pull, cv_losses=losses, n_features=features.n_features, n_snapshots=int(x.shape[0]))
