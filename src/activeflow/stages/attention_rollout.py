"""Stage `attention_rollout`: where a trained particle transformer looks on one held-out snapshot
(§6.5, Fig. 7; `analysis.attention`)."""

import logging

import numpy as np

from activeflow import io
from activeflow.analysis.attention import rollout_dataset

log = logging.getLogger(__name__)


def run(
    model_path: str,
    spec_path: str,
    samples_path: str,
    out_path: str,
    snapshot: int,
    n_examples: int,
    expected: dict | None = None,
) -> None:
    model, spec, samples = io.load_evaluation_inputs(model_path, spec_path, samples_path, expected)
    n = samples.sizes["sample"]
    if not 0 <= snapshot < n:
        raise ValueError(f"map.snapshot = {snapshot}: the held-out set has snapshots 0 to {n - 1}")
    x, g = samples.x.values[snapshot], samples.g.values[snapshot]
    ds = rollout_dataset(model, x, g, n_examples)
    ds.attrs["snapshot"] = snapshot
    for i in ds.example.values:
        row = ds.rollout.values[i]
        near = np.argsort(row)[::-1][:4]
        log.info("particle %d (|x| = %.2f) attends most to %s (weights %s)", i, np.linalg.norm(x[i]), near.tolist(),
                 np.round(row[near], 3).tolist())
    io.write_netcdf(ds, out_path, dict(stage="attention_rollout", model=str(model_path), samples=str(samples_path),
                                       snapshot=snapshot, spec=spec))
