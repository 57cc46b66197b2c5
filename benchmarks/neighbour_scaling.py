"""Simulation cost of the MIPS system: our cell/Verlet neighbour list against jax-md's, side by side.

Both simulations start from the same relaxed state and use the same scheme (exact OU step for g, drift
step for x with ε = 0), the same force kernel (`MIPS.force_from`), cut-off and skin, and the same
rebuild rule (some particle moved more than skin/2); only the neighbour list differs: ours
(`activeflow.neighbours`) or `jax_md.partition.neighbor_list` (Dense format, `space.periodic`). Prints
milliseconds and particle-steps per second after compilation, and the cost of one step at the largest
size relative to the smallest. float32, as the workflow runs.

The cost of a step is the force over the list's M columns, so it scales with M. Ours is shown twice:
with the system's default capacities (sized for a packing fraction up to 1) and "fitted" as jax-md
sizes its list (1.25 × the occupancy of the start), which is what `integrators.simulate` runs (it grows the
list when a forming cluster overflows it, and from 4096 particles on keeps it sliced: rows sorted by
neighbour count, each slice padded to its own width). The force kernel sums pairs column-major (one
column per particle); jax-md's (N, M) list is fed to it in two ways, both timed and the faster kept
for its column: transposed at every step, or transposed only when jax-md rebuilds it (detected from
its reference positions, one comparison per step). All runs are timed in turns, best of --repeats.

jax-md is not a dependency of activeflow. To get its column: `pip install --no-deps jax-md jraph`; only
its `space` and `partition` modules are loaded (its package __init__ imports flax and more, which are
not needed here). Without it the jax-md column is left out.

Run: PYTHONPATH=src .venv/bin/python benchmarks/neighbour_scaling.py [--steps 300] [--sizes 4096 16384 32768]
     [--repeats 5]
"""

import argparse
import functools
import importlib.util
import sys
import time
import types

import jax
import jax.numpy as jnp

from activeflow.numerics import integrators
from activeflow.numerics.integrators import ou_step
from activeflow.physics import mips
from activeflow.physics.neighbours import NeighbourList

PAPER = dict(mu=1.0, v0=0.025, gamma=1e-4, eps=0.0, k=1.0, a=1.0, beta=7.5, phi=0.5)


def load_jax_md():
    """jax_md.space and jax_md.partition without running jax_md/__init__.py (None if not installed)."""
    spec = importlib.util.find_spec("jax_md")
    if spec is None:
        return None
    if "jax_md" not in sys.modules:
        package = types.ModuleType("jax_md")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["jax_md"] = package
    from jax_md import partition, space

    return space, partition


def in_turns(runs: dict, repeats: int) -> dict:
    """Best seconds of each run over `repeats` rounds after a first (compiling) call, the runs taken in
    turns (a, b, c, a, b, c, ...) so that a load from other processes hits all alike; and each run's
    last output."""
    out = {name: jax.block_until_ready(run()) for name, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            out[name] = jax.block_until_ready(run())
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], out[name]) for name in runs}


def ours(system, x, g, dt, steps, skin, fit):
    """Our simulation with the default (fit=False) or fitted list: the run and its search."""
    search = system.neighbour_search(skin)
    neighbours = jax.jit(search.build)(x)
    if fit:  # as `integrators.simulate` does (and as jax-md sizes its list): 1.25 x the occupancy of the start
        search = search.fitted(neighbours)
        neighbours = jax.jit(search.build)(x)
    return (lambda: integrators.advance_mips(system, search, jax.random.key(1), x, g, neighbours, dt, steps)), search


def as_dense_list(indices, y, columns=None):
    """jax-md's Dense index array as our (unsliced) list type, for the shared force kernel, with its
    column-major copy when one is given (else the kernel transposes the indices at each call)."""
    zero = jnp.zeros((), jnp.int32)
    return NeighbourList(indices, y, zero, zero, zero, columns=() if columns is None else (columns,))


def jax_md(modules, system, x, g, dt, steps, skin):
    """The same simulation with jax-md's list: the run and the list's width."""
    space, partition = modules
    box = system.box
    displacement, shift = space.periodic(box)
    neighbour_fn = partition.neighbor_list(
        displacement, box, system.cutoff, dr_threshold=skin, capacity_multiplier=1.25, format=partition.Dense
    )
    y = x + box / 2  # jax-md's periodic space lives in [0, L)

    @functools.partial(jax.jit, static_argnums=3)
    def advance(y, g, neighbours, carry_columns):
        def body(carry, key):
            y, g, neighbours, columns = carry
            updated = neighbour_fn.update(y, neighbours)
            if carry_columns:  # transpose only when jax-md has rebuilt its list
                rebuilt = jnp.any(updated.reference_position != neighbours.reference_position)
                columns = jax.lax.cond(rebuilt, lambda: updated.idx.T, lambda: columns)
            force = system.force_from(y, as_dense_list(updated.idx, y, columns if carry_columns else None))
            y_new = shift(y, dt * (system.mu * force + system.v0 * g))
            return (y_new, ou_step(system, jax.random.split(key)[1], g, dt), updated, columns), None

        start = (y, g, neighbours, neighbours.idx.T)
        return jax.lax.scan(body, start, jax.random.split(jax.random.key(1), steps))[0][:3]

    neighbours = neighbour_fn.allocate(y)
    runs = {f"jax-md{'' if carry else ' (per-step transpose)'}": (lambda carry=carry: advance(y, g, neighbours, carry))
            for carry in (True, False)}
    return runs, neighbours.idx.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384, 32768])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--relax", type=int, default=300, help="steps from the random start before timing")
    parser.add_argument("--skin", type=float, default=0.5)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    modules = load_jax_md()
    print(f"{jax.devices()[0].platform}, float32, {args.steps} timed steps after {args.relax} relaxation steps, "
          f"skin {args.skin}, dt {args.dt}; jax {jax.__version__}; jax-md "
          + ("loaded" if modules else "not installed"))
    header = f"{'N':>6} {'builds':>6} {'M ours':>6} {'ours ms/step':>12} {'ours p-steps/s':>15}" \
             f" {'M fit':>11} {'fit ms/step':>11} {'fit p-steps/s':>13}"
    if modules:
        header += f" {'M jax-md':>8} {'jax-md ms/step':>14} {'jax-md p-steps/s':>16} {'ours/jax-md (default/fit)':>25}"
    print(header)
    per_step = {}
    for n in args.sizes:
        system = mips.MIPS(**PAPER, n_particles=n)
        x, g = (s[0] for s in system.initial_state(jax.random.key(0), 1))
        # Relax the overlaps of the random start so that both runs see a typical state.
        x, g, _ = integrators.simulate_mips(system, jax.random.key(2), x, g, args.dt, args.relax, skin=args.skin,
                                chunk=args.relax)
        default, search = ours(system, x, g, args.dt, args.steps, args.skin, fit=False)
        fit, fitted = ours(system, x, g, args.dt, args.steps, args.skin, fit=True)
        runs = {"default": default, "fitted": fit}
        if modules:
            md_runs, width = jax_md(modules, system, x, g, args.dt, args.steps, args.skin)
            runs.update(md_runs)
        timed = in_turns(runs, args.repeats)
        if modules:  # jax-md's column: the faster of the two ways of feeding its list to the kernel
            md = list(md_runs)
            for name in md:
                print(f"  {name}: {1e3 * timed[name][0] / args.steps:.3g} ms/step", flush=True)
            timed["jax-md"] = min((timed[name] for name in md), key=lambda t: t[0])
        for name, s in (("default", search), ("fitted", fitted)):
            s.check(timed[name][1][2])
        if modules and bool(timed["jax-md"][1][2].did_buffer_overflow):
            raise RuntimeError("jax-md neighbour list overflowed; raise capacity_multiplier")
        seconds, seconds_fit = timed["default"][0], timed["fitted"][0]
        builds = int(timed["default"][1][2].n_builds) - 1
        widths = "/".join(map(str, fitted.slice_widths or [fitted.max_neighbours]))
        row = f"{n:>6} {builds:>6} {search.max_neighbours:>6} {1e3 * seconds / args.steps:>12.3g} " \
              f"{n * args.steps / seconds:>15.3g} {widths:>11} " \
              f"{1e3 * seconds_fit / args.steps:>11.3g} {n * args.steps / seconds_fit:>13.3g}"
        per_step[n] = [seconds / args.steps, seconds_fit / args.steps]
        if modules:
            seconds_md = timed["jax-md"][0]
            per_step[n].append(seconds_md / args.steps)
            row += f" {width:>8} {1e3 * seconds_md / args.steps:>14.3g} {n * args.steps / seconds_md:>16.3g}" \
                   f" {seconds_md / seconds:>5.2f}/{seconds_md / seconds_fit:<5.2f}"
        print(row, flush=True)
    small, large = min(per_step), max(per_step)
    names = ("ours", "ours fitted", "jax-md")
    ratios = [f"{name} {b / a:.2f}" for name, a, b in zip(names, per_step[small], per_step[large])]
    print(f"one step at N={large} / one step at N={small} ({large / small:g}x the particles): " + ", ".join(ratios))


if __name__ == "__main__":
    main()
