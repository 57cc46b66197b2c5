"""Stage `mips_fields`: the MIPS network's per-particle v_g and ∇_g·v_g on one samples file, and their
means by phase and by local packing fraction (`analysis.mips_fields`)."""

import logging
from typing import Any

import pandas as pd

from activeflow import io
from activeflow.analysis.mips_fields import by_local_phi, by_phase, fields_dataset
from activeflow.numerics.mips_sampling import make_mips

log = logging.getLogger(__name__)


def run(model_path: str, spec_path: str, samples_path: str, fields_path: str, summary_path: str,
        expected: dict[str, Any], n_snapshots: int | None = None, profile_path: str | None = None,
        thresholds: dict[str, float] | None = None, force_tolerance: float = 1e-6) -> None:
    """Fields of `n_snapshots` snapshots of one samples file (training or transfer),
    their means by phase (`summary_path`) and by local packing fraction (`profile_path`).
    `force_tolerance` is the simulation's cut-off of the pair force, whose divergence gives the truth."""
    model, spec = io.load_model(model_path, spec_path, expected)
    samples = io.read_netcdf(samples_path, required=("x", "g"))
    # the training system's particles (the same parameters), at any N and φ
    io.check_samples(samples, samples_path, "mips", spec["parameters"], (samples.sizes.get("particle", 0), 2),
                     free=("n_particles", "phi"))
    gamma = float(spec["parameters"]["gamma"])
    system = make_mips(spec["parameters"], dict(force_tolerance=force_tolerance),
                       int(samples.attrs["n_particles"]), float(samples.attrs["phi"]))
    log.info("evaluating the score of %s (K = %d) on %s: N = %d, phi = %g", model_path, model.n_neighbours,
             samples_path, samples.attrs["n_particles"], samples.attrs["phi"])
    ds = fields_dataset(model, samples, system, n_snapshots)
    io.write_netcdf(ds, fields_path, dict(stage="mips_fields", spec=spec, samples=samples_path))
    row = by_phase(ds, thresholds)
    io.write_csv(pd.DataFrame([row]), summary_path)
    if profile_path is not None:
        profile = by_local_phi(ds)
        io.write_csv(profile, profile_path)
        shown = profile[profile["count"] >= 10]
        log.info("wrote %s: by local packing fraction, |v_g|^2 / gamma^2 (and the cosine of v_g with the "
                 "direction away from the neighbours): %s", profile_path, ", ".join(
                     f"{r.local_phi_low:.1f}: {r.v_g_sq / gamma**2:.3g} ({r.v_g_outward:+.2f})"
                     for r in shown.itertuples()))
    log.info("wrote %s and %s: mean |v_g|^2 per particle %.3g (gas %.3g, surface %.3g, interior %.3g); "
             "score-matching identity E|s_g|^2 + div s_g = %.3g +- %.2g per particle (0 for the exact score)",
             fields_path, summary_path, row["v_g_sq"], row["v_g_sq_gas"], row["v_g_sq_surface"],
             row["v_g_sq_interior"], row["sm_identity_g"], row["sm_identity_g_stderr"])
    log.info("Ṡ_tot per particle: learned mean |v_g|^2 / gamma %.4g +- %.2g, score-free truth mu <Laplacian Phi> "
             "%.4g +- %.2g (relative error %+.3g)", row["S_tot_learned"], row["S_tot_learned_stderr"],
             row["S_tot_score_free"], row["S_tot_score_free_stderr"], row["S_tot_rel_error"])
    if not row.get("trusted", True):
        log.warning("the MIPS score is NOT TRUSTED on %s (%s): Ṡ_tot %.3g against the truth %.3g, score-matching "
                    "identity %.3g +- %.2g (terms of size %.3g); its figures are marked", samples_path, row["why"],
                    row["S_tot_learned"], row["S_tot_score_free"], row["sm_identity_g"],
                    row["sm_identity_g_stderr"], row["sm_identity_g_scale"])
