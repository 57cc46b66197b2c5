"""Snapshots of the active solid (`physics.lattice`) from the integrator every system runs.

Each of `n_runs` independent runs starts from an exact draw of the continuous dynamics' stationary law
(`LatticeExact.sample`): g is then exactly stationary (its OU step is exact), and only the positions must
relax to the law of the discrete chain, which differs from the continuous one by O(Δt) in the stiff
modes (rate μλ_q up to 8μk). After t_equilibrate (many times 1/(8μk)) each run records `n_snapshots`
snapshots spaced by t_between. All runs step together under vmap (`integrators.advance`: x by the
Euler step, noiseless at ε = 0, g by its exact OU step), as the MIPS simulation steps its particles.
"""

import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from activeflow.numerics.integrators import advance, n_steps_for
from activeflow.physics.lattice import Lattice
from activeflow.physics.lattice_exact import LatticeExact

log = logging.getLogger(__name__)


def simulate_lattice(system: Lattice, key: jax.Array, simulation: dict[str, Any], label: str) -> dict[str, np.ndarray]:
    """x, g of shape (n_runs·n_snapshots, N, 2), ordered run by run, with each snapshot's run and time."""
    dt, n_runs, n_snapshots = float(simulation["dt"]), int(simulation["n_runs"]), int(simulation["n_snapshots"])
    k_start, k_eq, k_rec = jax.random.split(key, 3)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_start)).ravel())
    x0, g0 = LatticeExact(system).sample(rng, n_runs)
    x, g = jnp.asarray(x0), jnp.asarray(g0)
    n_eq, n_between = n_steps_for(float(simulation["t_equilibrate"]), dt), n_steps_for(float(simulation["t_between"]), dt)
    start = time.perf_counter()
    x, g = advance(system, k_eq, x, g, dt, n_eq, "euler_maruyama")
    log.info("%s: %d runs equilibrated to t = %g (%d steps, %.1f s)", label, n_runs, n_eq * dt, n_eq,
             time.perf_counter() - start)
    xs, gs = [np.asarray(x)], [np.asarray(g)]
    for s in range(1, n_snapshots):
        x, g = advance(system, jax.random.fold_in(k_rec, s), x, g, dt, n_between, "euler_maruyama")
        xs.append(np.asarray(x))
        gs.append(np.asarray(g))
        log.info("%s: snapshot %d/%d", label, s + 1, n_snapshots)
    # (snapshot, run, ...) -> run by run
    x_all, g_all = np.stack(xs, 1), np.stack(gs, 1)
    times = (n_eq + np.arange(n_snapshots) * n_between) * dt
    return dict(x=x_all.reshape(-1, *x_all.shape[2:]), g=g_all.reshape(-1, *g_all.shape[2:]),
                run=np.repeat(np.arange(n_runs), n_snapshots), time=np.tile(times, n_runs))


def attributes(system: Lattice, dt: float) -> dict[str, float | int]:
    """What the fields stage and a notebook need: the box, the system and the simulation's Δt (the
    discrete chain's law, whose exact score is known, depends on it)."""
    return dict(box=system.box, n_particles=system.n_particles, n_side=system.n_side, k=system.k,
                spacing=system.spacing, mu=system.mu, v0=system.v0, gamma=system.gamma, eps=system.eps, dt=dt)
