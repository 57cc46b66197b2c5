"""How the FPE invariants move with the error of a score, where every score is exact in closed form: the
linear system of `config/quick.yaml` (2 particles, μ = 1, γ = ε = 0.1, trap 1, spring 0.5) and linear
scores s = −P r. For the exact P*, scaled scores (1 + α)P*, generic perturbations P* + αE (E a random
symmetric matrix, scaled so that the score's rms error is α of the exact score's rms) and the Boltzmann
score (the v0 = 0 score, D⁻¹b at v0 = 0):

- Ṡ_tot = tr(VᵀD⁻¹VΣ) with V = M + DP, and its relative error;
- the invariants' means E[∇·v] = tr V, E[v·s] = −tr(VᵀPΣ) (fpe_residual their sum), in units of their
  parts, the sum of the absolute means of their x and g terms (what `analysis.diagnostics` uses as scale
  where it exceeds the per-snapshot one);
- E[|s|² + ∇·s] per block, in units of E|s|² + E|∇·s|;
- the per-particle EPR density's rms error relative to the exact one's rms (1000 exact samples).

    python benchmarks/verdict_calibration.py
"""

import numpy as np

from activeflow.physics.linear import drift_matrix, exact
from activeflow.physics.systems import make_system

PARAMETERS = dict(mu=1.0, gamma=0.1, eps=0.1, trap=1.0, spring=0.5, n_particles=2, dim=2)


def measures(system, ex, P: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    M, D, S = ex.drift_matrix, ex.diffusion, ex.covariance
    Dinv = np.diag(1 / np.diag(D))
    nd = ex.n_particles * ex.dim
    V = M + D @ P
    epr = float(np.trace(V.T @ Dinv @ V @ S))
    x, g = slice(0, nd), slice(nd, 2 * nd)
    div = {b: float(np.trace(V[s, s])) for b, s in (("x", x), ("g", g))}
    vs = {b: -float(np.trace(V[s, :].T @ P[s, :] @ S)) for b, s in (("x", x), ("g", g))}
    div_parts, vs_parts = abs(div["x"]) + abs(div["g"]), abs(vs["x"]) + abs(vs["g"])
    sm = {}
    for b, s in (("x", x), ("g", g)):
        sq, dv = float(np.trace(P[s, :].T @ P[s, :] @ S)), -float(np.trace(P[s, s]))
        sm[b] = (sq + dv) / (sq + abs(dv))
    # per-particle EPR density |v^i|²_{D⁻¹} on exact samples, against the exact score's
    n, d = ex.n_particles, ex.dim
    v = samples @ V.T
    v_star = samples @ ex.velocity_matrix.T

    def density(v):
        w = v**2 @ Dinv
        return w[:, :nd].reshape(-1, n, d).sum(-1) + w[:, nd:].reshape(-1, n, d).sum(-1)

    dens, dens_star = density(v), density(v_star)
    field = float(np.sqrt(np.mean((dens - dens_star) ** 2) / np.mean(dens_star**2)))
    return dict(epr=epr, div_v=(div["x"] + div["g"]) / div_parts if div_parts else np.nan,
                v_dot_s=(vs["x"] + vs["g"]) / vs_parts if vs_parts else np.nan,
                fpe=(div["x"] + div["g"] + vs["x"] + vs["g"]) / (div_parts + vs_parts) if div_parts else np.nan,
                sm_x=sm["x"], sm_g=sm["g"], field=field)


def main() -> None:
    rng = np.random.default_rng(0)
    print("| v0 | score | Ṡ_tot rel. error | div_v / parts | v_dot_s / parts | fpe_residual / parts | "
          "sm_x / scale | sm_g / scale | rms error of the EPR density |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v0 in (0.5, 1.0):
        system = make_system("linear", PARAMETERS | dict(v0=v0))
        ex = exact(system)
        S = ex.covariance
        samples = rng.multivariate_normal(np.zeros(S.shape[0]), S, size=1000)
        P_star = ex.precision
        rms_star = np.sqrt(np.trace(P_star.T @ P_star @ S))
        boltzmann = -np.diag(1 / np.diag(ex.diffusion)) @ drift_matrix(make_system("linear", PARAMETERS | dict(v0=0.0)))
        E = rng.normal(size=P_star.shape)
        E = E + E.T
        E /= np.sqrt(np.trace(E.T @ E @ S)) / rms_star
        truth = measures(system, ex, P_star, samples)["epr"]
        scores = [("exact", P_star)] + [(f"scaled by 1 + {a:g}", (1 + a) * P_star) for a in (0.01, 0.02, 0.05, 0.1)]
        scores += [(f"generic error {a:g}", P_star + a * E) for a in (0.01, 0.02, 0.05, 0.1)]
        scores += [("Boltzmann (v0 = 0)", boltzmann)]
        for name, P in scores:
            m = measures(system, ex, P, samples)
            print(f"| {v0:g} | {name} | {m['epr'] / truth - 1:+.3%} | {m['div_v']:+.4f} | {m['v_dot_s']:+.4f} | "
                  f"{m['fpe']:+.4f} | {m['sm_x']:+.4f} | {m['sm_g']:+.4f} | {m['field']:.3f} |")


if __name__ == "__main__":
    main()
