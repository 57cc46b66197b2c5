"""How far the float32 score and exact per-particle divergence of the paper-size local transformer are
from float64, at each matrix-product precision JAX offers (default, high, highest).

On a CPU all three agree (XLA-CPU multiplies float32 in full precision). On a GPU the default may use
TF32: measured on an H200 (jax 0.11.2, N = 1024), the default gave 1.7e-3 (s_g) and 4.6e-3 (∇_g·s_g)
largest error / rms, against < 5e-6 on a CPU; hence the evaluation stages run at 'highest'
(activeflow.precision.full_precision).

Run: PYTHONPATH=src .venv/bin/python benchmarks/matmul_precision.py [--particles 1024]
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from local_divergence_cost import mips_like_snapshot

from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.physics.neighbours import k_nearest, nearest_search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=1024)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)  # for the float64 reference; the rest is cast to float32
    x, g, box = mips_like_snapshot(args.particles, 0.5, seed=1)
    idx, complete = k_nearest(nearest_search(x, box, 64), jnp.asarray(x), 64)
    assert bool(complete.all())
    net = LocalTransformerScore.build(dim=2, embed_dim=256, n_layers=4, n_heads=4, mlp_width=256, mlp_depth=2,
                                      n_neighbours=64, key=jax.random.key(0))

    def fields(dtype, precision):
        cast = jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, net)
        with jax.default_matmul_precision(precision):
            s, d = cast.score_and_divergence(jnp.asarray(x, dtype), jnp.asarray(g, dtype), idx, box)
        return np.asarray(s, np.float64), np.asarray(d, np.float64)

    s_ref, d_ref = fields(jnp.float64, "highest")
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}, N = {args.particles}; "
          "largest |float32 - float64| / rms(float64)")
    for precision in ("default", "high", "highest"):
        s, d = fields(jnp.float32, precision)
        print(f"  {precision:8s} s_g {np.abs(s - s_ref).max() / np.sqrt(np.mean(s_ref**2)):.2e}   "
              f"div_g s_g {np.abs(d - d_ref).max() / np.sqrt(np.mean(d_ref**2)):.2e}", flush=True)


if __name__ == "__main__":
    main()
