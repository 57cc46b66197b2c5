"""Stage `lattice_fields`: the active solid's learned per-particle v_g and ∇_g·v_g on held-out snapshots,
beside their closed forms (`analysis.lattice_fields`), and one summary row."""

import logging
from typing import Any

import pandas as pd

from activeflow import io
from activeflow.analysis.lattice_fields import fields_dataset, summary
from activeflow.physics.lattice import lattice_side, make_lattice

log = logging.getLogger(__name__)


def run(model_path: str, spec_path: str, samples_path: str, fields_path: str, summary_path: str,
        expected: dict[str, Any], n_snapshots: int | None = None, sigma: float | None = None,
        thresholds: dict[str, float] | None = None) -> None:
    """`sigma`: the denoising noise whose optimum's Ṡ_tot (closed form) is reported beside the learned one."""
    model, spec = io.load_model(model_path, spec_path, expected)
    samples = io.read_netcdf(samples_path, required=("x", "g"))
    n = samples.sizes.get("particle", 0)
    # the training system's particles and bonds (the same parameters), at any side n
    io.check_samples(samples, samples_path, "lattice", spec["parameters"], (n, 2), free=("n_side",))
    system = make_lattice(spec["parameters"], lattice_side(n))
    log.info("evaluating the score of %s (K = %d) on %s: %dx%d lattice", model_path, model.n_neighbours,
             samples_path, system.n_side, system.n_side)
    ds = fields_dataset(model, samples, system, n_snapshots)
    io.write_netcdf(ds, fields_path, dict(stage="lattice_fields", spec=spec, samples=samples_path))
    row = summary(ds, sigma, thresholds)
    io.write_csv(pd.DataFrame([row]), summary_path)
    log.info("wrote %s and %s: Ṡ_tot per particle learned %.4g +- %.2g, exact %.4g (the Euler chain's own %.4g), "
             "relative error %+.3g; per-particle |v_g|^2 rms error %.3g of the exact's rms (%.3g of the chain's)",
             fields_path, summary_path, row["S_tot_learned"], row["S_tot_learned_stderr"], row["S_tot_exact"],
             row["S_tot_chain"], row["S_tot_rel_error"], row["v_g_sq_rms_rel_error"],
             row["v_g_sq_rms_rel_error_chain"])
    if not row.get("trusted", True):
        log.warning("the active solid's score is NOT TRUSTED on %s (%s)", samples_path, row["why"])
