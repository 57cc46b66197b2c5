"""Wall time of the paper-scale workflow (config/config.yaml) on this machine, estimated from measured
per-unit costs: the run itself takes days, so each heavy stage is timed on one unit of its work (a
simulation step of all replicas, a training step, the fields of one snapshot) at the paper's sizes, after
compilation, and multiplied by the number of units in its jobs. Prints one row per stage: the unit, its
measured seconds, units per job, jobs, and the estimated hours. Stages left out (figures, maps, the
trap's fields and attention) cost minutes.

The estimate assumes the units are independent of the state (true for training steps and dense forces;
the MIPS step is timed at φ = 0.5 after relaxation from a uniform start, and a dense cluster or φ = 0.9
widens the neighbour list, so read the MIPS simulation rows as a lower bound). Jobs that may run
side by side (several CPU jobs, or jobs on several GPUs) are counted one after the other.

--max-replicas caps the replicas simulated in one timed step (their cost is linear in the number: the
estimate scales it back up), so that the script also finishes on a CPU; on a GPU leave it at its default.

Run: PYTHONPATH=src .venv/bin/python benchmarks/paper_scale_cost.py [--stages ...] [--max-replicas 100000]
     [--repeats 3] [--config config/config.yaml]
"""

import argparse
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import yaml
from local_divergence_cost import timed

from activeflow.analysis import mips_fields
from activeflow.models import registry
from activeflow.numerics import integrators
from activeflow.numerics.integrators import n_steps_for
from activeflow.numerics.mips_sampling import make_mips
from activeflow.physics.neighbours import nearest_search
from activeflow.physics.systems import make_system
from activeflow.training import denoising, score_matching, trainer

STAGES = ("simulate", "train_score", "simulate_mips", "simulate_transfer", "train_denoising", "mips_fields")


def best_time(run, repeats: int) -> float:
    """Seconds of one call after a compiling call, least of `repeats`."""
    return timed({"unit": run}, repeats)[1]["unit"]


def first_parameters(parameters: dict) -> dict:
    """One concrete point of a parameter sweep (the cost does not depend on v0)."""
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in parameters.items()}


def n_jobs(parameters: dict) -> int:
    return math.prod(len(v) for v in parameters.values() if isinstance(v, list))


def experiment_rows(cfg: dict, stages: set, args):
    for name, exp in cfg["experiments"].items():
        params, sim, jobs = first_parameters(exp["parameters"]), exp["simulation"], n_jobs(exp["parameters"])
        system = make_system(exp["system"], params)
        dt = float(sim["dt"])
        if "simulate" in stages:
            n_rep = int(sim["n_replicas"]) + int(sim["n_heldout_replicas"])
            timed = min(n_rep, args.max_replicas)
            x, g = system.initial_state(jax.random.key(0), timed)
            steps = 20
            t = best_time(lambda: integrators.advance(system, jax.random.key(1), x, g, dt, steps,  # noqa: B023
                                                   sim["integrator"]), args.repeats) / steps * n_rep / timed
            units = n_steps_for(float(sim["t_burn_in"]), dt) + (int(sim["n_snapshots"]) - 1) * n_steps_for(
                float(sim["t_between"]), dt)
            yield f"simulate ({name})", f"step of {n_rep:,} replicas (timed {timed:,})", t, units, jobs
        if "train_score" in stages:
            tr = exp["training"]
            model = registry.build_model(registry.model_spec(exp["system"], params, exp["network"]), jax.random.key(0))
            optimizer, _ = trainer.make_optimizer(tr)
            state = eqx.filter(model, eqx.is_inexact_array)
            opt_state = optimizer.init(state)
            batch = int(tr["batch_size"])
            x, g = model.system.initial_state(jax.random.key(1), batch)
            loss = score_matching.score_loss(float(tr["lambda_sm"]), float(tr["lambda_fpe"]), tr["divergence"],
                                             int(tr["n_probes"]))
            step = trainer.compiled_step(loss, optimizer, float(tr["ema_decay"]))
            data = (x, g, jax.random.key(2))
            health = trainer.initial_health(loss, model, data)
            t = best_time(lambda: step(model, opt_state, state, jnp.float32(0), data, health),  # noqa: B023
                          args.repeats)
            yield (f"train_score ({name})", f"step, batch {batch}, {tr['divergence']} divergence", t,
                   int(tr["steps"]), jobs)


def mips_rows(cfg: dict, stages: set, args):
    m = cfg["mips"]
    sim, transfer = m["simulation"], m["transfer"]
    dt, skin = float(sim["dt"]), float(sim["skin"])
    sizes = sorted(set(transfer["n_particles"]) | {int(m["parameters"]["n_particles"])})
    states = {}
    for n in sizes:  # a relaxed φ = 0.5 state of each size, and the cost of one step from it
        system = make_mips(m["parameters"], sim, n, 0.5)
        x, g = (s[0] for s in system.initial_state(jax.random.key(0), 1))
        x, g, search = integrators.simulate_mips(system, jax.random.key(1), x, g, dt, 200, skin=skin, chunk=200)
        neighbours = eqx.filter_jit(search.build)(x)
        steps = 100
        t = best_time(lambda: integrators.advance_mips(system, search, jax.random.key(2), x, g, neighbours, dt,  # noqa: B023
                                           steps), args.repeats) / steps
        states[n] = (system, x, g, t)

    def per_run(s):
        return n_steps_for(float(s["t_equilibrate"]), dt) + (int(s["n_snapshots"]) - 1) * n_steps_for(
            float(sim["t_between"]), dt)

    n0 = int(m["parameters"]["n_particles"])
    if "simulate_mips" in stages:
        yield "simulate_mips", f"step, N = {n0}", states[n0][3], int(sim["n_runs"]) * per_run(sim), 1
    if "simulate_transfer" in stages:
        n_phi = len(transfer["phi"])
        for n in transfer["n_particles"]:
            yield (f"simulate_transfer (N = {n})", f"step, N = {n}", states[n][3],
                   int(transfer["n_runs"]) * per_run(transfer), n_phi)
    if not stages & {"train_denoising", "mips_fields"}:
        return
    system, x, g, _ = states[n0]
    model = registry.build_model(registry.model_spec("mips", m["parameters"], m["network"]), jax.random.key(3))
    if "train_denoising" in stages:
        tr = m["training"]
        search = nearest_search(x, system.box, model.n_neighbours)
        optimizer, _ = trainer.make_optimizer(tr)
        state = eqx.filter(model, eqx.is_inexact_array)
        opt_state = optimizer.init(state)
        loss = denoising.denoising_batch_loss(search, system.box, float(tr["sigma"]), bool(tr["augment"]),
                                              bool(tr["antithetic"]))
        step = trainer.compiled_step(loss, optimizer, float(tr["ema_decay"]))
        batch = int(tr["batch_size"])
        data = (x[None], g[None], batch, jnp.asarray(0), jax.random.key(4))
        health = trainer.initial_health(loss, model, data)
        t = best_time(lambda: step(model, opt_state, state, jnp.float32(0), data, health), args.repeats)
        yield "train_denoising", f"step, batch {batch} particles", t, int(tr["steps"]), 1
    if "mips_fields" in stages:
        n_snap = int(m["evaluation"]["n_snapshots"])
        for n in transfer["n_particles"]:
            system, xn, gn, _ = states[n]
            search = nearest_search(xn, system.box, model.n_neighbours)
            t = best_time(lambda: mips_fields.particle_fields(model, xn, gn, system.box, system.gamma,  # noqa: B023
                                                           search=search), args.repeats)  # as the stage does
            jobs = len(transfer["phi"]) + (1 if n == n0 else 0)
            yield f"mips_fields (N = {n})", f"fields of one snapshot, N = {n}", t, n_snap, jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--max-replicas", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    stages = set(args.stages)
    print(f"{args.config} on {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax {jax.__version__}, "
          "float32")
    print(f"{'stage':32s} {'unit':44s} {'s/unit':>10s} {'units/job':>11s} {'jobs':>5s} {'hours':>9s}")
    total = 0.0
    for rows in (experiment_rows(cfg, stages, args), mips_rows(cfg, stages, args) if "mips" in cfg else ()):
        for stage, unit, seconds, units, jobs in rows:
            hours = seconds * units * jobs / 3600
            total += hours
            print(f"{stage:32s} {unit:44s} {seconds:10.4g} {units:11,d} {jobs:5d} {hours:9.3g}", flush=True)
    print(f"{'total (one job after another)':32s} {'':44s} {'':>10s} {'':>11s} {'':>5s} {total:9.3g}")


if __name__ == "__main__":
    main()
