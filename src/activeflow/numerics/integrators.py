"""Time steps of AOUP systems: g by its exact Ornstein–Uhlenbeck step, x by Euler–Maruyama or
Leimkuhler–Matthews (one `x_step` for every system), many replicas under vmap and steps under lax.scan;
MIPS with its Verlet list refreshed as particles move."""

import logging
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from activeflow.physics.mips import MIPS
from activeflow.physics.neighbours import NeighbourList, NeighbourSearch
from activeflow.physics.systems import AOUPSystem

log = logging.getLogger(__name__)
Batch = Float[Array, "R N d"]
Snapshot = Float[Array, "N d"]


INTEGRATORS = ("leimkuhler_matthews", "euler_maruyama")


def ou_step(system: AOUPSystem, key: jax.Array, g: Float[Array, "*R N d"], dt: float) -> Float[Array, "*R N d"]:
    """Exact Ornstein–Uhlenbeck update of g: no time-step bias in its (Gaussian) law."""
    decay = jnp.exp(-system.gamma * dt)
    std = jnp.sqrt(system.Dg / system.gamma * (1 - decay**2))
    return decay * g + std * jax.random.normal(key, g.shape, g.dtype)


def x_step(
    system: AOUPSystem, x: Float[Array, "*R N d"], b_x: Float[Array, "*R N d"], dt: float, integrator: str,
    noise: Float[Array, "*R N d"] | None = None, previous_noise: Float[Array, "*R N d"] | None = None,
) -> Float[Array, "*R N d"]:
    """Position update with drift b_x and standard normal noise ξ_{n+1} (and ξ_n for
    Leimkuhler–Matthews), folded into the box of a periodic system:
    Euler–Maruyama   x + b_x Δt + √(2D_xΔt) ξ_{n+1};
    Leimkuhler–Matthews x + b_x Δt + √(2D_xΔt) (ξ_n + ξ_{n+1})/2, second order in the invariant law
    of overdamped Langevin dynamics at the cost of one step.
    Without noise (D_x = 0) both are the deterministic drift step x + b_x Δt."""
    if noise is None:
        return system.wrap(x + b_x * dt)
    if integrator == "euler_maruyama":
        kick = jnp.sqrt(2 * system.Dx * dt) * noise
    elif integrator == "leimkuhler_matthews":
        kick = jnp.sqrt(system.Dx * dt / 2) * (noise + previous_noise)
    else:
        raise ValueError(f"integrator={integrator!r}; allowed: {list(INTEGRATORS)}")
    return system.wrap(x + b_x * dt + kick)


@eqx.filter_jit
def advance(
    system: AOUPSystem,
    key: jax.Array,
    x: Batch,
    g: Batch,
    dt: float,
    n_steps: int,
    integrator: str = INTEGRATORS[0],
) -> tuple[Batch, Batch]:
    """n_steps steps of a batch of replicas: x by `integrator`, g by its exact OU step.
    (n_steps and integrator are static: one compilation per distinct value.)"""

    def body(carry, k):
        x, g, previous = carry
        kx, kg = jax.random.split(k)
        noise = jax.random.normal(kx, x.shape, x.dtype)
        b_x = jax.vmap(system.drift)(x, g)[0]
        x_new = x_step(system, x, b_x, dt, integrator, noise, previous)
        return (x_new, ou_step(system, kg, g, dt), noise), None

    k0, krun = jax.random.split(key)
    start = (x, g, jax.random.normal(k0, x.shape, x.dtype))
    (x, g, _), _ = jax.lax.scan(body, start, jax.random.split(krun, n_steps))
    return x, g


def n_steps_for(duration: float, dt: float) -> int:
    return max(int(round(duration / dt)), 0)


def mips_step(
    system: MIPS, search: NeighbourSearch, key: jax.Array, x: Snapshot, g: Snapshot,
    neighbours: NeighbourList, dt: float,
) -> tuple[Snapshot, Snapshot, NeighbourList]:
    """One step: refresh the list if needed, x ← x + b_x Δt (+ √(2εΔt) ξ when ε > 0), g by its exact OU
    step. Returns the list valid at the old x (it is refreshed at the start of the next step)."""
    kx, kg = jax.random.split(key)
    neighbours = search.update(neighbours, x)
    b_x = system.mu * system.force_from(x, neighbours) + system.v0 * g
    noise = jax.random.normal(kx, x.shape, x.dtype) if system.Dx > 0 else None
    return x_step(system, x, b_x, dt, "euler_maruyama", noise), ou_step(system, kg, g, dt), neighbours


@eqx.filter_jit
def advance_mips(
    system: MIPS, search: NeighbourSearch, key: jax.Array, x: Snapshot, g: Snapshot,
    neighbours: NeighbourList, dt: float, n_steps: int,
) -> tuple[Snapshot, Snapshot, NeighbourList]:
    """n_steps steps of one system under lax.scan (dt and n_steps static). Check the returned list with
    `search.check` (or `search.overflowed`) before trusting the result."""

    def body(carry, k):
        return mips_step(system, search, k, *carry, dt), None

    (x, g, neighbours), _ = jax.lax.scan(body, (x, g, neighbours), jax.random.split(key, n_steps))
    return x, g, neighbours


def simulate_mips(
    system: MIPS, key: jax.Array, x: Snapshot, g: Snapshot, dt: float, n_steps: int,
    skin: float = 0.5, chunk: int = 1000, search: NeighbourSearch | None = None, grow: bool = True,
    what: str = "mips",
) -> tuple[Snapshot, Snapshot, NeighbourSearch]:
    """`advance_mips` in chunks of `chunk` steps, checking for overflow after each. On overflow the
    chunk is rerun from its start with capacities grown to fit (`grow=True`, logged) or
    `NeighbourOverflow` is raised (`grow=False`). Returns the final state and the search used, to reuse
    for the next call.

    Without a `search`, the system's (sized for a packing fraction up to `max_packing`) is fitted to
    the starting state, as jax-md sizes its lists: a step costs in proportion to the list's width;
    growing it when a cluster forms costs a rerun chunk."""
    if search is None:
        search = system.neighbour_search(skin)
        search = search.fitted(eqx.filter_jit(search.build)(x))
        log.info("%s: neighbour lists in the %r layout (the default for JAX's %s backend)", what, search.layout,
                 jax.default_backend())
    neighbours = eqx.filter_jit(search.build)(x)
    done, start = 0, time.perf_counter()
    while done < n_steps:
        todo = min(chunk, n_steps - done)
        key, sub = jax.random.split(key)
        while True:
            x_new, g_new, after = advance_mips(system, search, sub, x, g, neighbours, dt, todo)
            if not bool(search.overflowed(after)):
                break
            if not grow:
                search.check(after)
            search = search.grown(after)
            log.info("%s: neighbour list full (the local density rose); rerunning the chunk with "
                     "cell_capacity=%d, max_neighbours=%d", what, search.cell_capacity, search.max_neighbours)
            neighbours = eqx.filter_jit(search.build)(x)
        x, g, neighbours = x_new, g_new, after
        done += todo
        rate = done / (time.perf_counter() - start)
        log.info("%s: step %d/%d (%.0f steps/s, %d list builds, %.0f s left)",
                 what, done, n_steps, rate, int(neighbours.n_builds), (n_steps - done) / rate)
    return x, g, search
