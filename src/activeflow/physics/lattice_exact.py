"""Closed forms of the active solid (`lattice.Lattice`), mode by mode.

In the orthonormal Fourier basis of the n×n lattice, mode q = 2π(m₁, m₂)/n of each coordinate obeys
    du_q = (−a_q u_q + v0 g_q) dt + √(2ε) dW,   dg_q = −γ g_q dt + √(2γ) dW',
with a_q = μλ_q and λ_q = 2k(2 − cos q₁ − cos q₂) the eigenvalues of the Hessian H = k·(graph
Laplacian). Each mode is an independent 2×2 Gaussian with
    Σ_gg = 1,   Σ_ug = v0/(a + γ),   Σ_uu = (ε + v0²/(a + γ))/a,
and the score is s = −Σ⁻¹(u_q, g_q) mode by mode, a Fourier multiplier in real space. The mode q = 0
(the centre of mass, uniform on the torus) has s_x = 0 and s_g = −g. Then
    Ṡ_tot (g part) = γ d Σ_q E|g_q + s_g,q|²,
which at ε = 0 equals μ tr H = d·4·μ·k·N for any v0 > 0 and γ (the score-free identity), and
s_g = −g − (μ/(v0γ)) H b_x − (μ/v0) F exactly.

Also here, for the same modes: the minimiser of the denoising loss with noise σ_x on x and σ_g on g
(the score of ρ ∗ N(0, diag(σ_x², σ_g²)), evaluated on clean samples), and the stationary law of the
discrete-time chain the simulation runs (x by an Euler step with the old g, g by its exact OU step),
whose own score is what a perfectly learned network would return from its samples.
"""

from dataclasses import dataclass

import numpy as np

from activeflow.physics.lattice import COORDINATION, Lattice


@dataclass(frozen=True)
class ModeCovariance:
    """Per-mode stationary covariance (arrays of shape (n, n), mode (m₁, m₂)); the q = 0 entries are
    placeholders: that mode is handled apart (it is not confined)."""

    uu: np.ndarray
    ug: np.ndarray
    gg: np.ndarray

    def precision(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P_uu, P_ug, P_gg) of Σ⁻¹, with the q = 0 mode's score coefficients (0, 0, 1/gg)."""
        det = self.uu * self.gg - self.ug**2
        with np.errstate(divide="ignore", invalid="ignore"):
            p = self.gg / det, -self.ug / det, self.uu / det
        zero = (0, 0)
        p[0][zero], p[1][zero], p[2][zero] = 0.0, 0.0, 1.0 / self.gg[zero]
        return p

    def smoothed(self, sigma_x: float, sigma_g: float) -> "ModeCovariance":
        """The covariance of the data plus independent noise σ_x on every u and σ_g on every g."""
        return ModeCovariance(self.uu + sigma_x**2, self.ug, self.gg + sigma_g**2)


class LatticeExact:
    """Exact stationary quantities of a `Lattice` system."""

    def __init__(self, system: Lattice):
        self.system = system
        m = np.arange(system.n_side)
        theta = 2 * np.pi * m / system.n_side
        self.hessian_eigenvalues = 2 * system.k * (2 - np.cos(theta)[:, None] - np.cos(theta)[None, :])
        self.rates = system.mu * self.hessian_eigenvalues  # a_q

    def covariance(self) -> ModeCovariance:
        s, a = self.system, self.rates
        with np.errstate(divide="ignore", invalid="ignore"):
            ug = s.v0 / (a + s.gamma)
            uu = (s.eps + s.v0 * ug) / a
        return ModeCovariance(np.where(a > 0, uu, np.inf), ug, np.ones_like(a))

    def chain_covariance(self, dt: float) -> ModeCovariance:
        """Stationary covariance of u' = u + Δt(−a u + v0 g) + √(2εΔt)ξ, g' = e^{−γΔt}g + √(1 − e^{−2γΔt})ξ'
        (Σ = TΣTᵀ + Q solved per mode in closed form; needs aΔt < 2 for every mode)."""
        s, a = self.system, self.rates
        if np.max(a) * dt >= 2:
            raise ValueError(f"the Euler step is unstable: a_max Δt = {np.max(a) * dt:g} >= 2")
        c, rho = 1 - a * dt, np.exp(-s.gamma * dt)
        ug = s.v0 * dt * rho / (1 - c * rho)
        with np.errstate(divide="ignore", invalid="ignore"):
            uu = (2 * c * s.v0 * dt * ug + (s.v0 * dt) ** 2 + 2 * s.eps * dt) / (1 - c**2)
        return ModeCovariance(np.where(a > 0, uu, np.inf), ug, np.ones_like(a))

    # ---- global values ---------------------------------------------------------------------------

    def epr_g_of(self, score_of: ModeCovariance, law: ModeCovariance) -> float:
        """γ d Σ_q E_law|g_q + s_g,q|² for the score of `score_of` (a Gaussian per mode)."""
        s = self.system
        _, p_ug, p_gg = score_of.precision()
        w_u, w_g = -p_ug, 1 - p_gg
        confined = self.rates > 0
        per_mode = np.where(confined, w_u**2 * np.where(confined, law.uu, 0) + 2 * w_u * w_g * law.ug, 0) + w_g**2 * law.gg
        return float(s.gamma * s.dim * per_mode.sum())

    def epr_g(self) -> float:
        """E|v_g|²/γ: the whole Ṡ_tot at ε = 0."""
        cov = self.covariance()
        return self.epr_g_of(cov, cov)

    def epr_x(self) -> float:
        """E|v_x|²/ε (ε > 0), the q = 0 mode included (v_x,0 = v0 g_0, since s_x,0 = 0)."""
        s = self.system
        if s.eps <= 0:
            raise ValueError("the x part of Ṡ_tot needs eps > 0")
        cov = self.covariance()
        p_uu, p_ug, _ = cov.precision()
        confined = self.rates > 0
        # v_u = (−a + εP_uu) u + (v0 + εP_ug) g
        c_u, c_g = -self.rates + s.eps * p_uu, s.v0 + s.eps * p_ug
        uu = np.where(confined, cov.uu, 0.0)
        per_mode = np.where(confined, c_u**2 * uu + 2 * c_u * c_g * cov.ug, 0.0) + c_g**2 * cov.gg
        return float(s.dim * per_mode.sum() / s.eps)

    def epr_total(self) -> float:
        s = self.system
        return self.epr_g() + (self.epr_x() if s.eps > 0 else 0.0)

    def epr_identity(self) -> float:
        """μ tr H = d·z·μ·k·N, equal to `epr_total` at ε = 0."""
        s = self.system
        return float(s.dim * COORDINATION * s.mu * s.k * s.n_particles)

    def smoothed_epr_g(self, sigma_x: float, sigma_g: float) -> float:
        """γE|g + s_σ,g|² on clean samples, s_σ the score of the data smoothed by N(0, diag(σ_x², σ_g²))
        (the denoising loss's minimiser; σ_x = σ_g = σ for the loss (88))."""
        cov = self.covariance()
        return self.epr_g_of(cov.smoothed(sigma_x, sigma_g), cov)

    def chain_epr_g(self, dt: float) -> float:
        """γE|g + s_g|² on the chain's samples with the chain's own score: what a perfectly learned score
        gives from samples of time step Δt, against `epr_g` of the continuous dynamics."""
        cov = self.chain_covariance(dt)
        return self.epr_g_of(cov, cov)

    # ---- per-particle fields ---------------------------------------------------------------------

    def _multiply(self, multiplier: np.ndarray, field: np.ndarray) -> np.ndarray:
        """The Fourier multiplier applied to per-particle vectors of shape (..., N, d)."""
        n = self.system.n_side
        grid = field.reshape(*field.shape[:-2], n, n, field.shape[-1])
        out = np.fft.ifft2(multiplier[:, :, None] * np.fft.fft2(grid, axes=(-3, -2)), axes=(-3, -2)).real
        return out.reshape(field.shape)

    def law(self, dt: float | None = None) -> ModeCovariance:
        """The continuous dynamics' stationary law (dt None), or that of the Euler chain of step dt."""
        return self.covariance() if dt is None else self.chain_covariance(dt)

    def score(self, x: np.ndarray, g: np.ndarray, sigma_x: float = 0.0, sigma_g: float = 0.0,
              dt: float | None = None):
        """(s_x, s_g) at states (..., N, d); with σ, the smoothed density's score; with dt, the score of
        the Euler chain's law (what a perfectly learned network returns from the simulation's samples)."""
        u = np.asarray(self.system.displacements(np.asarray(x, np.float64)))
        p_uu, p_ug, p_gg = self.law(dt).smoothed(sigma_x, sigma_g).precision()
        s_x = -(self._multiply(p_uu, u) + self._multiply(p_ug, g))
        s_g = -(self._multiply(p_ug, u) + self._multiply(p_gg, g))
        return s_x, s_g

    def divergence_s_g(self, sigma_x: float = 0.0, sigma_g: float = 0.0, dt: float | None = None) -> float:
        """∇_{g^i}·s_g^i, the same for every particle: −d × the mean of P_gg over the modes."""
        p_gg = self.law(dt).smoothed(sigma_x, sigma_g).precision()[2]
        return float(-self.system.dim * p_gg.mean())

    def particle_epr_g(self) -> float:
        """E|v_g^i|²/γ of each particle (all alike): `epr_g` / N."""
        return self.epr_g() / self.system.n_particles

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n exact draws (x, g) of shape (n, N, d) (the centre of mass at the lattice's): real white noise
        z_u, z_g through the per-mode Cholesky factor, g = z_g and u = L_ug z_g + L_uu z_u as Fourier
        multipliers (real and even in q, so the fields are real with the modes' covariance)."""
        s = self.system
        cov = self.covariance()
        confined = self.rates > 0
        l_ug = np.where(confined, cov.ug, 0.0)
        l_uu = np.sqrt(np.where(confined, cov.uu - cov.ug**2, 0.0))
        z_u, z_g = rng.normal(size=(2, n, s.n_particles, s.dim))
        u = self._multiply(l_ug, z_g) + self._multiply(l_uu, z_u)
        return s.sites() + u - s.box * np.round(u / s.box), z_g
