"""Stages `movie_trap`, `movie_ring` and `movie_mips`: an MP4 and a PNG poster (its first frame) each; the
trap and MIPS movies colour each particle by the entropy production of the learned score, on one colour
scale for the whole movie. A movie of results that are not trusted carries the figures' mark.

- trap: the swimmers of the experiment's first recorded trajectory (`trajectories.nc`), by ∇_{g^i}·v_g^i;
- ring: the probability flow Ṙ = v(R) of the learned score from a few held-out states (`flow.flow_lines`,
  Runge–Kutta), the two particles on the ring beside the phase portrait, as the paper's Fig. 2 movie;
- MIPS: a trajectory simulated here from the last snapshot of a samples file, with the simulation's own
  integrator, a frame every `every`; two panels, |v_g^i|²/γ (the particle's total EPR at ε = 0) and
  ∇_{g^i}·v_g^i (its system EPR), as the paper's Fig. 8.
"""

import itertools
import logging
from typing import Any

import numpy as np

from activeflow import io
from activeflow.analysis.epr import epr_dataset
from activeflow.analysis.maps import span
from activeflow.analysis.mips_fields import snapshot_fields
from activeflow.figures import movies
from activeflow.numerics.flow import flow_lines
from activeflow.numerics.mips_sampling import make_mips, trajectory
from activeflow.seeding import derive_key
from activeflow.stages.figure import MARK, untrusted

log = logging.getLogger(__name__)
RING_FLOW_DT = 0.005  # the largest Runge–Kutta step of the ring's flow lines (and at most a tenth of a frame)


def run(model_path: str, spec_path: str, trajectories_path: str, summary_path: str, diagnostics_path: str,
        movie_path: str, poster_path: str, experiment: str, expected: dict | None, fps: float, pixels: int,
        thresholds: dict | None = None, which: int = 0) -> None:
    """The trap movie of trajectory `which` of `trajectories_path`, its verdict read from the experiment's
    summary and diagnostics."""
    model, _ = io.load_model(model_path, spec_path, expected)
    traj = io.read_netcdf(trajectories_path, required=("x", "g"))
    if not 0 <= which < traj.sizes["trajectory"]:
        raise ValueError(f"{trajectories_path}: no trajectory {which} (it has {traj.sizes['trajectory']})")
    x, g, times = traj.x.values[which], traj.g.values[which], traj.time.values
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


def run_mips(model_path: str, spec_path: str, samples_path: str, phases_path: str, movie_path: str,
             poster_path: str, system_name: str, expected: dict[str, Any], simulation: dict[str, Any], seed: int,
             n_frames: int, every: float, fps: float, pixels: int) -> None:
    """The MIPS movie of `system_name` (train, transfer/n…-phi…): `n_frames` frames `every` apart from the last
    snapshot of its samples, its verdict read from its `epr_by_phase.csv`."""
    model, spec = io.load_model(model_path, spec_path, expected)
    samples = io.read_netcdf(samples_path, required=("x", "g"))
    io.check_samples(samples, samples_path, "mips", spec["parameters"], (samples.sizes.get("particle", 0), 2),
                     free=("n_particles", "phi"))
    system = make_mips(spec["parameters"], simulation, int(samples.attrs["n_particles"]), float(samples.attrs["phi"]))
    box, gamma = system.box, system.gamma
    log.info("mips %s: simulating %d frames %g apart from the last snapshot of %s (N = %d)", system_name, n_frames,
             every, samples_path, system.n_particles)
    xs, gs = trajectory(system, derive_key(seed, "mips", "movie", system_name), samples.x.values[-1],
                        samples.g.values[-1], float(simulation["dt"]), every, n_frames, what=f"mips {system_name} movie")
    fields = list(snapshot_fields(model, system, xs, gs, box))
    epr = np.stack([f["v_g_sq"] for f in fields]) / gamma
    div = np.stack([f["div_g_v_g"] for f in fields])
    log.info("mips %s: fields of %d frames; mean |v_g|²/γ per particle %.4g", system_name, n_frames, epr.mean())
    reasons = untrusted(dict(trust_phases=[phases_path]), None)
    if reasons:
        log.warning("the MIPS score is not trusted on %s (%s): the movie is marked '%s'", system_name,
                    "; ".join(reasons), MARK)
    panels = [movies.Panel(f"total EPR, N = {system.n_particles}", r"$|v_g^i|^2/\gamma$", "magma",
                           movies.upper_norm(epr)),
              movies.Panel(r"system EPR", r"$\nabla_{g^i}\cdot v_g^i$", "RdBu_r", movies.symmetric_norm(div))]
    t = movies.template((-box / 2, box / 2, -box / 2, box / 2), panels, pixels, mark=MARK.upper() if reasons else None)
    times = float(samples.time.values[-1]) + every * np.arange(n_frames)
    count = movies.write_mp4(movies.frames_of(t, xs, [epr, div], times, system.a), movie_path, fps)
    movies.write_png(movies.frame(t, xs[0], [epr[0], div[0]], system.a, f"t = {times[0]:.4g}"), poster_path)
    log.info("wrote %s (%d frames at %g per second) and its poster %s", movie_path, count, fps, poster_path)


def run_ring(model_path: str, spec_path: str, map_path: str, heldout_path: str, summary_path: str,
             diagnostics_path: str, movie_path: str, poster_path: str, expected: dict | None, n_starts: int,
             n_frames: int, every: float, fps: float, pixels: int, thresholds: dict | None = None) -> None:
    """The ring's flow movie: `n_starts` held-out states moved by the learned probability flow, `n_frames`
    frames `every` apart (Runge–Kutta steps of at most RING_FLOW_DT and every/10), over the map's stationary
    density."""
    model, _ = io.load_model(model_path, spec_path, expected)
    system = model.system
    field = io.read_netcdf(map_path, required=("density",))
    held = io.read_netcdf(heldout_path, required=("x", "g"))
    if held.sizes["sample"] < n_starts:
        raise ValueError(f"{heldout_path}: {held.sizes['sample']} held-out states, fewer than {n_starts} starts")
    pick = np.linspace(0, held.sizes["sample"] - 1, n_starts).round().astype(int)
    steps = max(int(np.ceil(every / RING_FLOW_DT)), 10)
    xs, gs = flow_lines(model, system, held.x.values[pick], held.g.values[pick], every / steps, steps, n_frames)
    xs, gs = np.asarray(xs)[:, :, 0, 0], np.asarray(gs)[:, :, 0, 0]
    log.info("ring flow: %d starts, %d frames %g apart (%d Runge–Kutta steps each)", n_starts, n_frames, every, steps)
    reasons = untrusted(dict(trust_summaries=[summary_path], trust_diagnostics=[diagnostics_path]), thresholds)
    if reasons:
        log.warning("the ring's score is not trusted (%s): the movie is marked '%s'", "; ".join(reasons), MARK)
    extent = (*span(field, "x"), *span(field, "g"))
    times = every * np.arange(n_frames)
    frames = movies.ring_flow_frames(field.density.values, extent, xs, gs, times, system.length, system.a, pixels,
                                     mark=MARK.upper() if reasons else None)
    poster = next(frames)  # the first frame, drawn once for both
    count = movies.write_mp4(itertools.chain([poster], frames), movie_path, fps)
    movies.write_png(poster, poster_path)
    log.info("wrote %s (%d frames at %g per second) and its poster %s", movie_path, count, fps, poster_path)
