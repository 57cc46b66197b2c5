"""Stage `movie_trap`: a stochastic trajectory of the trap's swimmers (the simulation's own, from
`trajectories.nc`), each frame coloured by the system EPR ∇_{g^i}·v_g^i of the learned score, on one colour
scale for the whole movie; an MP4 and a PNG poster (its first frame). A movie of an experiment that is not
trusted carries the figures' mark."""

import logging

import numpy as np

from activeflow import io
from activeflow.analysis.epr import epr_dataset
from activeflow.figures import movies
from activeflow.stages.figure import MARK, untrusted

log = logging.getLogger(__name__)


def run(model_path: str, spec_path: str, trajectories_path: str, summary_path: str, diagnostics_path: str,
        movie_path: str, poster_path: str, experiment: str, expected: dict | None, fps: float, pixels: int,
        thresholds: dict | None = None, trajectory: int = 0) -> None:
    model, _ = io.load_model(model_path, spec_path, expected)
    traj = io.read_netcdf(trajectories_path, required=("x", "g"))
    if not 0 <= trajectory < traj.sizes["trajectory"]:
        raise ValueError(f"{trajectories_path}: no trajectory {trajectory} (it has {traj.sizes['trajectory']})")
    x, g, times = traj.x.values[trajectory], traj.g.values[trajectory], traj.time.values
    system = model.system
    if x.shape[-1] != 2:
        raise ValueError(f"{trajectories_path}: movies draw particles in d = 2, these are in d = {x.shape[-1]}")
    values = epr_dataset(model, system, x, g)["div_g_v_g"].values
    log.info("%s: ∇_g·v_g of %d swimmers on %d frames (t = %g to %g)", experiment, x.shape[1], len(times),
             times[0], times[-1])
    reach = float(np.abs(x).max()) + system.a
    reasons = untrusted(dict(trust_summaries=[summary_path], trust_diagnostics=[diagnostics_path]), thresholds)
    if reasons:
        log.warning("%s is not trusted (%s): the movie is marked '%s'", experiment, "; ".join(reasons), MARK)
    panel = movies.Panel(experiment, r"system EPR $\nabla_{g^i}\cdot v_g^i$", "RdBu_r", movies.symmetric_norm(values))
    t = movies.template((-reach, reach, -reach, reach), [panel], pixels, mark=MARK.upper() if reasons else None)
    count = movies.write_mp4(movies.frames_of(t, x, [values], times, system.a), movie_path, fps)
    movies.write_png(movies.frame(t, x[0], [values[0]], system.a, f"t = {times[0]:.4g}"), poster_path)
    log.info("wrote %s (%d frames at %g per second) and its poster %s", movie_path, count, fps, poster_path)
