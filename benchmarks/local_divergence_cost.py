"""Cost of the per-particle divergence ∇_{g^i}·s_g^i of the local transformer (F.6), and peak memory of
chunked evaluation at N = 32768.

1. Timing (this process): one MIPS-like snapshot of N particles (default 4096, φ = 0.5), K nearest
   neighbours (default 64), the paper-size network by default (d_e = 256, 4 layers, 4 heads, 256-wide
   MLPs of depth 2, as the trap's transformer). Times, after compilation, one forward pass s_g for
   all particles and s_g together with the exact ∇_{g^i}·s_g^i for all particles (d forward-mode
   products per particle sharing the primal), both chunked (each at the library's default chunk
   size); the two are timed in turns and the best of `--repeats` is kept, since other processes may
   share the cores; prints seconds and their ratio.
2. Memory (a fresh subprocess, so that its peak is its own: VmHWM): N = 32768 at φ = 0.5, neighbour search
   sized from the data, then s_g and s_g + divergence, chunked; prints peak resident memory after
   the imports and after each stage. A small network by default, to
   keep the run short: chunking makes the network's share of memory independent of N (it is
   O(chunk·K·d_e)), and the timing process reports its own peak with the paper-size network for
   comparison.

The snapshot is synthetic but MIPS-like (no simulation needed): about 55% of the particles in one
dense hexagonal cluster (slightly overlapping soft disks, local φ ≈ 0.87), the rest uniform in the
gas around it, so the neighbour search sees both the dense and the dilute phase. float32, as the
workflow runs.

Run: PYTHONPATH=src .venv/bin/python benchmarks/local_divergence_cost.py
     [--particles 4096] [--neighbours 64] [--embed-dim 256] [--layers 4] [--heads 4] [--chunk 32]
     [--div-chunk 16] [--repeats 2]
     [--memory-particles 32768] [--memory-embed-dim 64] [--memory-layers 2] [--no-memory]
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from activeflow.models.local_transformer import DEFAULT_CHUNK, DIVERGENCE_CHUNK, LocalTransformerScore
from activeflow.numerics.precision import full_precision
from activeflow.physics.neighbours import k_nearest, nearest_search


def mips_like_snapshot(n: int, phi: float, seed: int, cluster_fraction: float = 0.55):
    """Positions (cluster + gas) and g ~ N(0, 1) in a periodic box of side √(Nπ/φ) (a = 1)."""
    rng = np.random.default_rng(seed)
    box = math.sqrt(n * math.pi / phi)
    spacing = 1.95  # disks of radius 1 overlapping a little, as in the soft-disk MIPS cluster
    m = int(cluster_fraction * n)
    side = int(math.ceil(math.sqrt(m))) + 4
    i, j = np.meshgrid(np.arange(-side, side), np.arange(-side, side))
    lattice = np.stack([spacing * (i + 0.5 * (j % 2)), spacing * math.sqrt(3) / 2 * j], -1).reshape(-1, 2)
    lattice = lattice[np.argsort(np.sum(lattice**2, -1))][:m]  # the m sites nearest the centre: a disc
    radius = np.sqrt(np.sum(lattice**2, -1)).max() + spacing
    gas = []
    while len(gas) < n - m:
        p = rng.uniform(0, box, size=(2 * n, 2))
        far = np.sqrt(np.sum((p - box / 2) ** 2, -1)) > radius
        gas.extend(p[far][: n - m - len(gas)])
    x = np.concatenate([lattice + box / 2, np.asarray(gas)])
    x = x + rng.normal(scale=0.05, size=x.shape)
    return x.astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32), box


def build(args, embed_dim: int, layers: int) -> LocalTransformerScore:
    return LocalTransformerScore.build(
        dim=2, embed_dim=embed_dim, n_layers=layers, n_heads=args.heads, mlp_width=embed_dim, mlp_depth=2,
        n_neighbours=args.neighbours, key=jax.random.key(0),
    )


def peak_rss_gib() -> float:
    """Peak resident memory of this process: VmHWM of /proc/self/status (its own address space; the
    getrusage maxrss of a child also counts the parent's at the fork), else getrusage."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def device_peak_gib() -> float | None:
    """Peak memory in use on the accelerator (None on a CPU, whose memory is the RSS above)."""
    stats = jax.devices()[0].memory_stats() if jax.devices()[0].platform != "cpu" else None
    return stats["peak_bytes_in_use"] / 2**30 if stats and "peak_bytes_in_use" in stats else None


def prepare(n: int, args):
    x, g, box = mips_like_snapshot(n, 0.5, seed=1)
    search = nearest_search(x, box, args.neighbours)
    x, g = jnp.asarray(x), jnp.asarray(g)
    idx, complete = k_nearest(search, x, args.neighbours)
    assert bool(complete.all()), "incomplete neighbour choice"
    return x, g, box, search, idx


def timed(functions: dict, repeats: int) -> tuple[dict, dict]:
    """Seconds of each function's first call (with compilation), and the least of `repeats` further
    calls, taken in turns (f, g, f, g, ...) so that a load from other processes hits both alike."""
    first, best = {}, {}
    for name, f in functions.items():
        start = time.perf_counter()
        jax.block_until_ready(f())
        first[name], best[name] = time.perf_counter() - start, math.inf
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            jax.block_until_ready(f())
            best[name] = min(best[name], time.perf_counter() - start)
    return first, best


@full_precision  # as the workflow evaluates
def timing(args) -> None:
    x, g, box, search, idx = prepare(args.particles, args)
    net = build(args, args.embed_dim, args.layers)
    n_weights = sum(a.size for a in jax.tree.leaves(eqx.filter(net, eqx.is_array)))
    print(f"N = {args.particles}, K = {args.neighbours}, box {box:.1f}, chunks {args.chunk} (forward) and "
          f"{args.div_chunk} (divergence), "
          f"network d_e = {args.embed_dim}, {args.layers} layers, {args.heads} heads, "
          f"{n_weights:,} weights, {jax.devices()[0].platform}, "
          f"{x.dtype}; search cut-off {search.cutoff:.2f}, max_neighbours {search.max_neighbours}")
    functions = {
        "forward s_g, all particles": lambda: net(x, g, idx, box, chunk_size=args.chunk),
        "s_g + exact div_g, all particles":
            lambda: net.score_and_divergence(x, g, idx, box, chunk_size=args.div_chunk),
    }
    first, best = timed(functions, args.repeats)
    s_g, _ = functions["s_g + exact div_g, all particles"]()
    np.testing.assert_allclose(s_g, functions["forward s_g, all particles"](), rtol=1e-4, atol=1e-5)
    print(f"{'':34s} {'first call (s)':>15s} {'best of ' + str(args.repeats) + ' (s)':>13s} {'per particle (ms)':>18s}")
    for name in functions:
        print(f"{name:34s} {first[name]:15.2f} {best[name]:13.3f} {1e3 * best[name] / args.particles:18.3f}")
    t_f, t_d = best.values()
    print(f"ratio (s_g + divergence) / forward: {t_d / t_f:.2f}   (target <= 3)")
    print(f"peak RSS of this process: {peak_rss_gib():.2f} GiB")


@full_precision
def memory(args) -> dict:
    base = peak_rss_gib()
    x, g, box, search, idx = prepare(args.memory_particles, args)
    after_neighbours = peak_rss_gib()
    net = build(args, args.memory_embed_dim, args.memory_layers)
    jax.block_until_ready(net(x, g, idx, box, chunk_size=args.chunk))
    after_forward = peak_rss_gib()
    s, div = jax.block_until_ready(net.score_and_divergence(x, g, idx, box, chunk_size=args.div_chunk))
    assert s.shape == (args.memory_particles, 2) and bool(jnp.isfinite(div).all())
    return dict(n=args.memory_particles, box=box, cutoff=search.cutoff, max_neighbours=search.max_neighbours,
                cell_capacity=search.cell_capacity, base=base, neighbours=after_neighbours,
                forward=after_forward, divergence=peak_rss_gib(), device=device_peak_gib())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=4096)
    parser.add_argument("--neighbours", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--div-chunk", type=int, default=DIVERGENCE_CHUNK)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-particles", type=int, default=32768)
    parser.add_argument("--memory-embed-dim", type=int, default=64)
    parser.add_argument("--memory-layers", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(memory(args)))
        return
    timing(args)
    if args.no_memory:
        return
    out = subprocess.run([sys.executable, *sys.argv, "--memory-only"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nmemory, N = {r['n']} (box {r['box']:.1f}), K = {args.neighbours}, "
          f"chunks {args.chunk}/{args.div_chunk}, network "
          f"d_e = {args.memory_embed_dim}, {args.memory_layers} layers, {args.heads} heads; search cut-off "
          f"{r['cutoff']:.2f}, max_neighbours {r['max_neighbours']}, cell_capacity {r['cell_capacity']}")
    print(f"{'peak RSS after imports':40s} {r['base']:6.2f} GiB")
    print(f"{'  + k-d tree sizing and neighbour list':40s} {r['neighbours']:6.2f} GiB")
    print(f"{'  + s_g, all particles':40s} {r['forward']:6.2f} GiB")
    print(f"{'  + s_g and exact div_g, all particles':40s} {r['divergence']:6.2f} GiB   (target < 4 GiB)")
    if r["device"] is not None:
        print(f"{'peak accelerator memory in use':40s} {r['device']:6.2f} GiB")


if __name__ == "__main__":
    main()
