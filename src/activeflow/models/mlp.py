"""The MLP score network of the ring and linear systems (F.2.3)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

Snapshot = Float[Array, "N d"]


class MLPScore(eqx.Module):
    """Two fully connected GELU networks, one for s_x and one for s_g (F.2.3), on the flattened
    snapshot. With a period L, x enters through (cos 2πx/L, sin 2πx/L), so the score is periodic."""

    net_x: eqx.nn.MLP
    net_g: eqx.nn.MLP
    n_particles: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    period: float | None = eqx.field(static=True)

    def __init__(
        self,
        n_particles: int,
        dim: int,
        width: int,
        depth: int,
        period: float | None,
        *,
        key: PRNGKeyArray,
    ):
        self.n_particles, self.dim, self.period = n_particles, dim, period
        nd = n_particles * dim
        n_in = (2 * nd if period is not None else nd) + nd
        kx, kg = jax.random.split(key)
        mlp = dict(in_size=n_in, out_size=nd, width_size=width, depth=depth, activation=jax.nn.gelu)
        self.net_x = eqx.nn.MLP(**mlp, key=kx)
        self.net_g = eqx.nn.MLP(**mlp, key=kg)

    def features(self, x: Snapshot, g: Snapshot) -> Float[Array, " features"]:
        x, g = x.ravel(), g.ravel()
        if self.period is not None:
            phase = 2 * jnp.pi * x / self.period
            x = jnp.concatenate([jnp.cos(phase), jnp.sin(phase)])
        return jnp.concatenate([x, g])

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        h = self.features(x, g)
        return self.net_x(h).reshape(x.shape), self.net_g(h).reshape(g.shape)
