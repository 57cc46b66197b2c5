"""The particle transformer of App. E (Fig. 4) and attention rollout (App. E.3).

Tokens are particles: x^i and g^i are embedded by separate MLPs (to d_e/2 each) and concatenated (92);
L post-LayerNorm encoder layers (91) mix them by multi-head self-attention; a particle-wise MLP decodes
s_x^i and another s_g^i. There is no positional encoding, so the network is permutation-equivariant by
construction and works for any number of particles.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

Snapshot = Float[Array, "N d"]
Tokens = Float[Array, "N d_e"]


def _centred_and_inverse_std(h: Float[Array, "... d_e"], eps: float):
    centred = h - h.mean(axis=-1, keepdims=True)
    return centred, jax.lax.rsqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _standardise(h: Float[Array, "... d_e"], eps: float) -> Float[Array, "... d_e"]:
    centred, inverse = _centred_and_inverse_std(h, eps)
    return centred * inverse


@_standardise.defjvp
def _standardise_jvp(eps, primals, tangents):
    # The closed form: JAX's own forward-mode derivative of eqx.nn.LayerNorm cost far more
    # (docs/performance.md).
    (h,), (dh,) = primals, tangents
    centred, inverse = _centred_and_inverse_std(h, eps)
    out = centred * inverse
    dh = dh - dh.mean(axis=-1, keepdims=True)
    return out, inverse * (dh - out * (out * dh).mean(axis=-1, keepdims=True))


def linear_rows(layer: eqx.nn.Linear, h: Float[Array, "... n_in"]) -> Float[Array, "... n_out"]:
    """`jax.vmap(layer)` over the rows of h, as one row-major matrix product: XLA-CPU then keeps the
    activations token-major instead of transposing them around every product."""
    out = h @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def mlp_rows(mlp: eqx.nn.MLP, h: Float[Array, "... n_in"]) -> Float[Array, "... n_out"]:
    """`jax.vmap(mlp)` over the rows of h (see `linear_rows`); MLPs with per-neuron activations, scalar
    ends or scanned layers are simply vmapped."""
    per_neuron = jax.tree_util.tree_leaves(eqx.filter((mlp.activation, mlp.final_activation), eqx.is_array))
    if getattr(mlp, "scan", False) or per_neuron or "scalar" in (mlp.in_size, mlp.out_size):
        rows = h.shape[: h.ndim - (mlp.in_size != "scalar")]
        out = jax.vmap(mlp)(h.reshape(-1, *h.shape[len(rows):]))
        return out.reshape(*rows, *out.shape[1:])
    if mlp.depth == 0:
        return linear_rows(mlp.layers[0], h)  # eqx applies no final activation at depth 0
    for layer in mlp.layers[:-1]:
        h = mlp.activation(linear_rows(layer, h))
    return mlp.final_activation(linear_rows(mlp.layers[-1], h))


def per_token(mlp: eqx.nn.MLP, h: Float[Array, "... n_in"], row_major: bool) -> Float[Array, "... n_out"]:
    """The MLP on every token: `mlp_rows` with `row_major`, else `jax.vmap`. Row-major is faster for the
    local transformer's forward-mode divergence, slower for the trap's reverse-over-forward training
    step, so each takes its faster one (docs/performance.md)."""
    return mlp_rows(mlp, h) if row_major else jax.vmap(mlp)(h)


def layer_norm(norm: eqx.nn.LayerNorm, h: Float[Array, "... d_e"]) -> Float[Array, "... d_e"]:
    """`norm` applied to every row of h (the last axis), the same function as `jax.vmap(norm)`, with a
    closed-form derivative: the divergences differentiate through every LayerNorm."""
    if h.shape[-1:] != tuple(norm.shape):
        raise ValueError(f"LayerNorm of shape {norm.shape} applied to rows of shape {h.shape[-1:]}")
    out = _standardise(h, norm.eps)
    if norm.use_weight:
        out = norm.weight * out
    if norm.use_bias:
        out = out + norm.bias
    return out


class EncoderLayer(eqx.Module):
    """One layer of (91): X ← LN(X + MultiHead(X)); X ← LN(X + ψ(X)), ψ a one-hidden-layer MLP per
    particle ("a single-layer MLP", App. E.2)."""

    attention: eqx.nn.MultiheadAttention
    norm_attention: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP
    norm_mlp: eqx.nn.LayerNorm

    def __init__(self, embed_dim: int, n_heads: int, mlp_width: int, *, key: PRNGKeyArray):
        katt, kmlp = jax.random.split(key)
        # d_h = d_e/h (App. E.1); biases as in the usual transformer layers.
        self.attention = eqx.nn.MultiheadAttention(
            n_heads, embed_dim, use_query_bias=True, use_key_bias=True, use_value_bias=True,
            use_output_bias=True, key=katt,
        )
        self.norm_attention = eqx.nn.LayerNorm(embed_dim)
        self.mlp = eqx.nn.MLP(embed_dim, embed_dim, mlp_width, depth=1, activation=jax.nn.gelu, key=kmlp)
        self.norm_mlp = eqx.nn.LayerNorm(embed_dim)

    def __call__(self, h: Tokens, *, row_major: bool = False) -> Tokens:
        h = layer_norm(self.norm_attention, h + self.attention(h, h, h))
        return layer_norm(self.norm_mlp, h + per_token(self.mlp, h, row_major))

    def head_weights(self, h: Tokens) -> Float[Array, "heads N N"]:
        """softmax(QKᵀ/√d_h) of each head (89); row i is how particle i attends to every particle."""
        att = self.attention
        n = h.shape[0]
        q = jax.vmap(att.query_proj)(h).reshape(n, att.num_heads, att.qk_size)
        k = jax.vmap(att.key_proj)(h).reshape(n, att.num_heads, att.qk_size)
        logits = jnp.einsum("ihc,jhc->hij", q, k) / math.sqrt(att.qk_size)
        return jax.nn.softmax(logits, axis=-1)

    def attention_weights(self, h: Tokens) -> Float[Array, "N N"]:
        """Head-averaged attention map of this layer (row-stochastic)."""
        return self.head_weights(h).mean(axis=0)


def _zero_last_layer(mlp: eqx.nn.MLP) -> eqx.nn.MLP:
    last = mlp.layers[-1]
    return eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp,
                       (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


class TransformerScore(eqx.Module):
    """Score network of Fig. 4: (x, g) of shape (N, d) → (s_x, s_g) of shape (N, d)."""

    embed_x: eqx.nn.MLP
    embed_g: eqx.nn.MLP
    layers: tuple[EncoderLayer, ...]
    decode_x: eqx.nn.MLP
    decode_g: eqx.nn.MLP
    dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        embed_dim: int,
        n_layers: int,
        n_heads: int,
        mlp_width: int,
        mlp_depth: int,
        zero_output: bool = False,
        g_features: int | None = None,
        *,
        key: PRNGKeyArray,
    ):
        if embed_dim % 2 or embed_dim % n_heads:
            raise ValueError(f"embed_dim={embed_dim} must be even and a multiple of n_heads={n_heads}")
        self.dim = dim
        kx, kg, kdx, kdg, *klayers = jax.random.split(key, 4 + n_layers)
        mlp = dict(width_size=mlp_width, depth=mlp_depth, activation=jax.nn.gelu)
        self.embed_x = eqx.nn.MLP(dim, embed_dim // 2, **mlp, key=kx)
        # g_features: a token's second input may carry more than g (`imbalance`: g-like inputs and contact terms).
        self.embed_g = eqx.nn.MLP(g_features or dim, embed_dim // 2, **mlp, key=kg)
        self.layers = tuple(EncoderLayer(embed_dim, n_heads, mlp_width, key=k) for k in klayers)
        self.decode_x = eqx.nn.MLP(embed_dim, dim, **mlp, key=kdx)
        self.decode_g = eqx.nn.MLP(embed_dim, dim, **mlp, key=kdg)
        if zero_output:
            # The decoders' last layers start at zero: with the Boltzmann shift, training then starts
            # from the equilibrium score exactly (the exact answer at v0 = 0), not from a random one.
            self.decode_x, self.decode_g = _zero_last_layer(self.decode_x), _zero_last_layer(self.decode_g)

    def embed(self, x: Snapshot, g: Float[Array, "N f"], *, row_major: bool = False) -> Tokens:
        """The token matrix X of (92): rows (φ_x(x^i), φ_g(g^i)) (g^i: f = d inputs unless built with more)."""
        return jnp.concatenate([per_token(self.embed_x, x, row_major), per_token(self.embed_g, g, row_major)], axis=-1)

    def __call__(self, x: Snapshot, g: Snapshot) -> tuple[Snapshot, Snapshot]:
        h = self.embed(x, g)
        for layer in self.layers:
            h = layer(h)
        return jax.vmap(self.decode_x)(h), jax.vmap(self.decode_g)(h)

    def attention_maps(self, x: Float[ArrayLike, "N d"], g: Float[ArrayLike, "N d"]) -> Float[Array, "L N N"]:
        """Head-averaged attention map A_l of every layer, in order, for one snapshot."""
        h, maps = self.embed(jnp.asarray(x), jnp.asarray(g)), []
        for layer in self.layers:
            maps.append(layer.attention_weights(h))
            h = layer(h)
        return jnp.stack(maps)


def rollout(maps: Float[Array, "L N N"]) -> Float[Array, "N N"]:
    """Attention rollout (93): A = ½(I + A_L) ⋯ ½(I + A_1). The identity stands for the residual
    connection and ½ keeps every row summing to 1; later layers multiply from the left, so row i of A
    is how the output token of particle i draws on the input particles (Abnar & Zuidema, ref. [81])."""
    eye = jnp.eye(maps.shape[-1], dtype=maps.dtype)
    out = eye
    for a in maps:
        out = 0.5 * (eye + a) @ out
    return out


def attention_rollout(
    model: eqx.Module, x: Float[ArrayLike, "N d"], g: Float[ArrayLike, "N d"]
) -> Float[Array, "N N"]:
    """Rolled-out attention of a `TransformerScore`, or of a `ScoreModel` wrapping one, at one snapshot."""
    network = getattr(model, "network", model)
    if not isinstance(network, TransformerScore):
        raise TypeError(f"attention rollout needs a transformer network, not {type(network).__name__}")
    return rollout(network.attention_maps(x, g))
