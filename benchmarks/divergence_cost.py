"""Cost of one training step with the exact against the stochastic (Hutchinson) divergence in the loss.

Paper-size particle transformer (4 layers, 4 heads, d_e = 256, 256-wide MLPs) on the 64-particle trap;
the batch is small by default so that the exact step finishes on a CPU. Prints seconds per step and
their ratio, measured in the same run after compilation.

Run: .venv/bin/python benchmarks/divergence_cost.py [--batch 2] [--particles 64] [--repeats 3]
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from activeflow.models import registry
from activeflow.training import score_matching, trainer

NETWORK = dict(kind="transformer", embed_dim=256, n_layers=4, n_heads=4, mlp_width=256, mlp_depth=2,
               boltzmann_shift=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--particles", type=int, default=64)
    parser.add_argument("--probes", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.3, gamma=0.1, eps=0.1, trap=0.05,
                  n_particles=args.particles, dim=2)
    model = registry.build_model(registry.model_spec("trap", params, NETWORK), jax.random.key(0))
    x, g = model.system.initial_state(jax.random.key(1), args.batch)
    optimizer = optax.adam(1e-4)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    ema = eqx.filter(model, eqx.is_inexact_array)
    index = jnp.arange(args.batch)
    print(f"N = {args.particles}, batch = {args.batch} snapshots, {jax.devices()[0].platform}")
    forward = eqx.filter_jit(lambda m, x, g: jax.vmap(m)(x, g))
    jax.block_until_ready(forward(model, x, g))
    start = time.perf_counter()
    for _ in range(args.repeats):
        jax.block_until_ready(forward(model, x, g))
    t_forward = (time.perf_counter() - start) / args.repeats
    print(f"forward pass:                  {t_forward:9.4f} s")
    times = {}
    for divergence in ("stochastic", "exact"):
        loss = score_matching.score_loss(1.0, 1.0, divergence, args.probes)
        step = trainer.compiled_step(loss, optimizer, 0.999)
        batch = (x[index], g[index], jax.random.key(2))
        health = trainer.initial_health(loss, model, batch)
        run = lambda: step(model, opt_state, ema, jnp.float32(0), batch, health)  # noqa: E731
        jax.block_until_ready(run())  # compile
        start = time.perf_counter()
        for _ in range(args.repeats):
            jax.block_until_ready(run())
        times[divergence] = (time.perf_counter() - start) / args.repeats
        print(f"training step, {divergence:10s} div: {times[divergence]:9.4f} s")
    print(f"ratio exact / stochastic ({args.probes} probe(s) per estimate, 2 estimates): "
          f"{times['exact'] / times['stochastic']:.1f}")


if __name__ == "__main__":
    main()
