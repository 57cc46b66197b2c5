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

from activeflow.physics.systems import Linear


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


def active_work_epr(system: Linear, covariance: np.ndarray) -> float:
    """Score-free Ṡ_tot = (v0/D_x) E[g·b_x] for a zero-mean law of (x, g) with this covariance
    (the exact Σ gives `epr_total`; a scheme's discrete stationary Σ gives what that scheme reports)."""
    nd = system.n_particles * system.dim
    M = drift_matrix(system)
    # E[g·b_x] = tr(M_xx Σ_xg) + tr(M_xg Σ_gg) with b_x = M_xx x + M_xg g
    E = np.trace(M[:nd, :nd] @ covariance[:nd, nd:]) + np.trace(M[:nd, nd:] @ covariance[nd:, nd:])
    return float(system.v0 / system.Dx * E)


def scheme_covariance(system: Linear, dt: float, integrator: str) -> np.ndarray:
    """Exact stationary covariance of (x, g) under the discrete scheme of `simulate.advance`
    (x by `integrator`, g by its exact OU step): the O(Δt) bias of a scheme, free of sampling noise.

    Both schemes are linear recursions z' = A z + B w with standard normal w, so the stationary
    covariance solves the discrete Lyapunov equation Σ = AΣAᵀ + BBᵀ. Leimkuhler–Matthews reuses the
    previous step's noise ξ_n, so its state is augmented to z = (x, g, ξ_n)."""
    nd = system.n_particles * system.dim
    M = drift_matrix(system)
    I, Z = np.eye(nd), np.zeros((nd, nd))
    Ax = np.hstack([I + dt * M[:nd, :nd], dt * M[:nd, nd:]])  # x' = x + Δt b_x(x, g) + kick
    decay = np.exp(-system.gamma * dt)
    g_std = np.sqrt(system.Dg / system.gamma * (1 - decay**2))
    if integrator == "euler_maruyama":
        A = np.vstack([Ax, np.hstack([Z, decay * I])])
        B = np.block([[np.sqrt(2 * system.Dx * dt) * I, Z], [Z, g_std * I]])
    elif integrator == "leimkuhler_matthews":
        c = np.sqrt(system.Dx * dt / 2)
        A = np.block([[Ax, c * I], [np.hstack([Z, decay * I]), Z], [np.hstack([Z, Z]), Z]])
        B = np.block([[c * I, Z], [Z, g_std * I], [I, Z]])
    else:
        raise ValueError(f"integrator={integrator!r}; allowed: ['leimkuhler_matthews', 'euler_maruyama']")
    cov = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
    return cov[: 2 * nd, : 2 * nd]


def stein_epr(system: Linear, covariance: np.ndarray) -> float:
    """Score-free Ṡ_tot in Stein form E[bᵀD⁻¹b + ∇·b] = tr(MᵀD⁻¹MΣ) + tr M for a zero-mean law."""
    M = drift_matrix(system)
    nd = system.n_particles * system.dim
    Dinv = np.diag(np.r_[np.full(nd, 1 / system.Dx), np.full(nd, 1 / system.Dg)])
    return float(np.trace(M.T @ Dinv @ M @ covariance) + np.trace(M))
