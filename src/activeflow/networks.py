"""Score networks (an MLP here; the particle transformer in `activeflow.transformer`). `ScoreModel`
adds the optional Boltzmann shift (F.3.2) to a network's output."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from activeflow.systems import AOUPSystem
from activeflow.transformer import TransformerScore

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


NETWORKS: dict[str, type[eqx.Module]] = {"mlp": MLPScore, "transformer": TransformerScore}


class ScoreModel(eqx.Module):
    """The learned score: s = network(x, g), plus the Boltzmann score of the system if `shift`
    (so that training starts near the equilibrium score instead of learning its O(1/ε) part)."""

    network: eqx.Module
    system: AOUPSystem
    shift: bool = eqx.field(static=True)

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        s_x, s_g = self.network(x, g)
        if self.shift:
            b_x, b_g = self.known_score(x, g)
            s_x, s_g = s_x + b_x, s_g + b_g
        return s_x, s_g

    def known_score(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        """The shift: the system's Boltzmann score (used only with `shift`)."""
        return self.system.boltzmann_score(x, g)

    def known_divergence(self, x: Snapshot) -> tuple[Float[Array, " N"], Float[Array, " N"]]:
        """Per-particle divergences of `known_score`, in closed form."""
        return self.system.boltzmann_score_divergence(x)


def make_network(kind: str, hyper: dict[str, Any], *, key: PRNGKeyArray) -> eqx.Module:
    if kind not in NETWORKS:
        raise ValueError(f"unknown network kind {kind!r}; allowed: {sorted(NETWORKS)}")
    return NETWORKS[kind](**hyper, key=key)


def network_hyperparameters(system: AOUPSystem, network: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of the network from the config's `network` block and the system."""
    kind = network["kind"]
    if kind == "mlp":
        return dict(
            n_particles=system.n_particles,
            dim=system.dim,
            width=int(network["width"]),
            depth=int(network["depth"]),
            period=system.box if network.get("periodic", True) else None,
        )
    if kind == "transformer":
        if system.box is not None:
            raise ValueError("network kind 'transformer' has no periodic embedding yet; use it in open space (trap)")
        # No n_particles: the same weights apply to any number of particles.
        return dict(
            dim=system.dim,
            embed_dim=int(network["embed_dim"]),
            n_layers=int(network["n_layers"]),
            n_heads=int(network["n_heads"]),
            mlp_width=int(network["mlp_width"]),
            mlp_depth=int(network["mlp_depth"]),
            zero_output=bool(network.get("boltzmann_shift", False)),
        )
    raise ValueError(f"unknown network kind {kind!r}; allowed: {sorted(NETWORKS)}")
