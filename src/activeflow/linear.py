"""Closed forms for the linear (harmonic) AOUP system.

With r = (vec x, vec g) ∈ R^{2Nd} the SDE is dr = M r dt + √(2D) dW, so ρ = N(0, Σ) with
MΣ + ΣMᵀ + 2D = 0 (Lyapunov). Then s = −Σ⁻¹ r, v = (M + DΣ⁻¹) r =: V r, and
    ∇·v = tr V (constant, hence zero since E∇·v = 0),   Ṡ_tot = E|v|²_{D⁻¹} = tr(Vᵀ D⁻¹ V Σ),
per-particle divergences are traces of the diagonal blocks of V, and the score-matching loss at the
optimum is E|s|² + 2E∇·s = tr Σ⁻¹ − 2 tr Σ⁻¹ = −E|s|².
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from activeflow.systems import Linear


@dataclass(frozen=True)
class LinearExact:
    """Exact stationary quantities; matrices act on r = (x.ravel(), g.ravel())."""

    drift_matrix: np.ndarray  # M
    diffusion: np.ndarray  # D (diagonal)
    covariance: np.ndarray  # Σ
    precision: np.ndarray  # Σ⁻¹, so s = −Σ⁻¹ r
    velocity_matrix: np.ndarray  # V = M + DΣ⁻¹, so v = V r
    n_particles: int
    dim: int

    @property
    def _nd(self) -> int:
        return self.n_particles * self.dim

    def score(self, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """s(x, g) for arrays of shape (..., N, d)."""
        r = np.concatenate([x.reshape(*x.shape[:-2], -1), g.reshape(*g.shape[:-2], -1)], axis=-1)
        s = -r @ self.precision.T
        return s[..., : self._nd].reshape(x.shape), s[..., self._nd :].reshape(g.shape)

    def score_fn(self):
        """The exact score as a JAX function of one snapshot (x, g), each (N, d)."""
        P = jnp.asarray(self.precision)
        nd = self._nd

        def score(x, g):
            s = -P @ jnp.concatenate([x.ravel(), g.ravel()]).astype(P.dtype)
            return s[:nd].reshape(x.shape), s[nd:].reshape(g.shape)

        return score

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n exact draws from ρ = N(0, Σ), as (x, g) of shape (n, N, d)."""
        r = rng.multivariate_normal(np.zeros(2 * self._nd), self.covariance, size=n)
        shape = (n, self.n_particles, self.dim)
        return r[:, : self._nd].reshape(shape), r[:, self._nd :].reshape(shape)

    def epr_total(self) -> float:
        """Ṡ_tot = E|v|²_{D⁻¹} = tr(Vᵀ D⁻¹ V Σ)."""
        V, Dinv = self.velocity_matrix, np.diag(1 / np.diag(self.diffusion))
        return float(np.trace(V.T @ Dinv @ V @ self.covariance))

    def epr_parts(self) -> tuple[float, float]:
        """(E|v_x|²/D_x, E|v_g|²/D_g)."""
        V, nd = self.velocity_matrix, self._nd
        Dd = np.diag(self.diffusion)
        cov_v = V @ self.covariance @ V.T
        return float(np.trace(cov_v[:nd, :nd]) / Dd[0]), float(np.trace(cov_v[nd:, nd:]) / Dd[-1])

    def epr_total_from_drift(self) -> float:
        """Score-free form Ṡ_tot = E[bᵀD⁻¹b + ∇·b] = tr(MᵀD⁻¹MΣ) + tr M (an independent check)."""
        M, Dinv = self.drift_matrix, np.diag(1 / np.diag(self.diffusion))
        return float(np.trace(M.T @ Dinv @ M @ self.covariance) + np.trace(M))

    def divergence_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-particle (∇_{x^i}·v_x^i, ∇_{g^i}·v_g^i): traces of V's diagonal d×d blocks (constants)."""
        diag = np.diag(self.velocity_matrix)
        n, d, nd = self.n_particles, self.dim, self._nd
        return diag[:nd].reshape(n, d).sum(-1), diag[nd:].reshape(n, d).sum(-1)

    def mean_squared_score(self) -> float:
        """E|s|² = tr Σ⁻¹."""
        return float(np.trace(self.precision))


def drift_matrix(system: Linear) -> np.ndarray:
    """M such that b(r) = M r, with r = (x.ravel(), g.ravel()) in particle-major order."""
    n, d = system.n_particles, system.dim
    hessian = system.trap * np.eye(n) + system.spring * (n * np.eye(n) - np.ones((n, n)))
    Hx = np.kron(hessian, np.eye(d))
    I = np.eye(n * d)
    return np.block([[-system.mu * Hx, system.v0 * I], [np.zeros_like(I), -system.gamma * I]])


def exact(system: Linear) -> LinearExact:
    """Solve the Lyapunov equation and assemble every closed form."""
    if system.eps <= 0:
        raise ValueError("the linear system's closed forms need eps > 0 (invertible D)")
    nd = system.n_particles * system.dim
    M = drift_matrix(system)
    D = np.diag(np.r_[np.full(nd, system.Dx), np.full(nd, system.Dg)])
    cov = scipy.linalg.solve_continuous_lyapunov(M, -2 * D)
    cov = (cov + cov.T) / 2
    prec = np.linalg.inv(cov)
    prec = (prec + prec.T) / 2
    return LinearExact(M, D, cov, prec, M + D @ prec, system.n_particles, system.dim)
