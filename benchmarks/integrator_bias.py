"""Time-step bias of the simulation schemes on the linear system, without sampling noise.

For each scheme the exact stationary covariance of the discrete recursion is computed from a discrete
Lyapunov equation (`activeflow.linear.scheme_covariance`) and compared with the continuous one; the
score-free Ṡ_tot (active-work and Stein forms) evaluated on that law is compared with the exact Ṡ_tot.
The paper's scheme (Euler–Maruyama for x and g) is computed here for comparison.

Run: .venv/bin/python benchmarks/integrator_bias.py
"""

import numpy as np
import scipy.linalg

from activeflow.physics.linear import active_work_epr, drift_matrix, exact, scheme_covariance, stein_epr
from activeflow.physics.systems import Linear


def paper_euler_maruyama_covariance(system: Linear, dt: float) -> np.ndarray:
    """Euler–Maruyama for both x and g: z' = (I + ΔtM) z + √(2DΔt) w."""
    nd = system.n_particles * system.dim
    A = np.eye(2 * nd) + dt * drift_matrix(system)
    Q = 2 * dt * np.diag(np.r_[np.full(nd, system.Dx), np.full(nd, system.Dg)])
    return scipy.linalg.solve_discrete_lyapunov(A, Q)


def main() -> None:
    systems = {
        "config linear (N=4, d=2, eps=gamma=0.1, v0=1)": Linear(
            mu=1.0, v0=1.0, gamma=0.1, eps=0.1, trap=1.0, spring=0.5, n_particles=4, dim=2
        ),
        "stiff linear (trap=10, gamma=1, v0=1)": Linear(
            mu=1.0, v0=1.0, gamma=1.0, eps=0.1, trap=10.0, spring=0.5, n_particles=4, dim=2
        ),
        "equilibrium (v0=0, trap=10)": Linear(
            mu=1.0, v0=0.0, gamma=1.0, eps=0.1, trap=10.0, spring=0.5, n_particles=4, dim=2
        ),
    }
    schemes = {
        "EM x + EM g (paper)": paper_euler_maruyama_covariance,
        "EM x + exact OU g": lambda s, dt: scheme_covariance(s, dt, "euler_maruyama"),
        "LM x + exact OU g (default)": lambda s, dt: scheme_covariance(s, dt, "leimkuhler_matthews"),
    }
    for label, system in systems.items():
        ex = exact(system)
        S, epr = ex.covariance, ex.epr_total()
        print(f"\n{label}: exact Ṡ_tot = {epr:.6g}")
        print(f"{'dt':>7} {'scheme':<30} {'|ΔΣ|/|Σ|':>10} {'Ṡ active-work':>15} {'Ṡ Stein':>15}")
        for dt in (1e-3, 1e-2):
            for name, covariance in schemes.items():
                C = covariance(system, dt)
                rel = np.linalg.norm(C - S) / np.linalg.norm(S)
                aw, st = active_work_epr(system, C), stein_epr(system, C)
                scale = epr if epr > 1e-12 else 1.0
                unit = "rel" if epr > 1e-12 else "abs"
                print(
                    f"{dt:7.0e} {name:<30} {rel:10.2e} {(aw - epr) / scale:+12.2e} {unit} {(st - epr) / scale:+12.2e} {unit}"
                )


if __name__ == "__main__":
    main()
