"""The particle-level local transformer of App. F.6 (the MIPS score network).

The score of particle i is the particle transformer of App. E (`transformer.TransformerScore`, whose
weights it holds: embeddings, encoder layers and decoders) applied to K + 1 tokens only: particle i
itself (token 0) and its K nearest neighbours (minimum image); the output row of token 0 is s^i, the other
rows are discarded. Weights are shared by all particles, so the network is permutation-equivariant and
applies to any N and any box.

Positions enter as displacements from the centre, x^j − x^i folded into the box (the centre's own token
sees 0), so the score is invariant under translations and periodic foldings of the snapshot. This is the
one departure from the trap's full transformer, which embeds absolute positions (the trap breaks
translation invariance, the periodic box does not): with K = N − 1 the local network reproduces, for each
i, the full transformer *applied to the snapshot re-centred on particle i*, read at row i (tested).

Derivatives: only the choice of neighbours is taken outside the differentiated function (indices from
`neighbours.py`, under `stop_gradient`); the displacements and the g^j are gathered inside it, so the
derivatives with respect to x^i (which enters every displacement) and g^i (token 0) are exact. The
per-particle divergence ∇_{g^i}·s_g^i is the trace of the d×d Jacobian of the centre's output with
respect to the centre's own g, by d forward-mode products sharing one primal evaluation.

The embeddings and all but the last encoder layer are `TransformerScore`'s own modules, called as they
are; the last layer computes the centre's row only (`_centre_layer`: the same weights, the centre as
the only query, with the key and value projections moved onto that one query), since only that row is
decoded. For the divergence, the first layer is split (`_first_layer_split`, tested equal to the
module): what the neighbours' tokens compute among themselves does not depend on g^i and stays outside
the differentiated function, so that the derivatives pass through the attention at O(K·d_e) cost.
Linear maps and MLPs act on all tokens as one row-major product (`linear_rows`, `mlp_rows`), which
XLA-CPU runs without transposing the tokens around each product (docs/performance.md).

All-particle evaluation is chunked over particles (`jax.lax.map` over padded chunks), so memory is
O(chunk·K·d_e) whatever N is; no N×N array is formed anywhere (neighbour selection included).
"""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from activeflow.chunking import map_blocks
from activeflow.models.transformer import EncoderLayer, TransformerScore, layer_norm, linear_rows, mlp_rows
from activeflow.physics.space import minimum_image

Snapshot = Float[Array, "N d"]
Indices = Int[Array, "n K"]
# Particles per chunk, the fastest measured for the paper-size network (docs/performance.md); the
# divergence carries d tangents besides the primal, hence a smaller chunk. Arrays of that size stay in cache.
DEFAULT_CHUNK = 32
DIVERGENCE_CHUNK = 16


def _heads(projection: eqx.nn.Linear, h: Float[Array, "T d_e"], n_heads: int) -> Float[Array, "T heads d_h"]:
    return linear_rows(projection, h).reshape(h.shape[0], n_heads, -1)


class FixedTokens(NamedTuple):
    """What the first layer's attention computes from the K other tokens alone (they do not depend on
    the centre's g): their query, key and value heads and, for each of their queries, the softmax
    pieces over their own keys, shifted by the largest logit `peak` for stability."""

    q: Float[Array, "K heads d_h"]
    k: Float[Array, "K heads d_h"]
    v: Float[Array, "K heads d_h"]
    peak: Float[Array, "heads K"]  # max_j l_ij over the others' keys j
    weight: Float[Array, "heads K"]  # Σ_j exp(l_ij − peak_i)
    mixed: Float[Array, "heads K d_h"]  # Σ_j exp(l_ij − peak_i) v_j


def fixed_tokens(attention: eqx.nn.MultiheadAttention, rest: Float[Array, "K d_e"]) -> FixedTokens:
    q, k, v = (_heads(p, rest, attention.num_heads)
               for p in (attention.query_proj, attention.key_proj, attention.value_proj))
    logits = jnp.einsum("shc,Shc->hsS", q / math.sqrt(q.shape[-1]), k)
    peak = logits.max(axis=-1)
    e = jnp.exp(logits - peak[..., None])
    return FixedTokens(q, k, v, peak, e.sum(axis=-1), jnp.einsum("hsS,Shc->hsc", e, v))


def _first_layer_split(
    layer: EncoderLayer, h0: Float[Array, "1 d_e"], rest: Float[Array, "K d_e"], fixed: FixedTokens
) -> Float[Array, "T d_e"]:
    """`layer(concat(h0, rest))` with the other tokens' part of the attention given (`fixed_tokens`).

    Only the centre's token varies (its own g), so inside a derivative the attention costs O(K·d_e):
    the centre's query row, and for every other query one new key and value (the centre's) added to
    its fixed softmax sums. Differentiating the full K+1 by K+1 attention would cost O(K²·d_e)."""
    att = layer.attention
    q0, k0, v0 = (_heads(p, h0, att.num_heads)[0] for p in (att.query_proj, att.key_proj, att.value_proj))
    scale = 1 / math.sqrt(q0.shape[-1])
    # The centre's row: its query against its own key and the others'.
    own = jnp.sum(q0 * k0, axis=-1, keepdims=True) * scale
    weights = jax.nn.softmax(jnp.concatenate([own, jnp.einsum("hc,Khc->hK", q0, fixed.k) * scale], -1), -1)
    centre = weights[:, :1] * v0 + jnp.einsum("hK,Khc->hc", weights[:, 1:], fixed.v)
    # The others' rows: the centre's key joins the fixed sums. The result does not depend on the shift
    # `peak` (it cancels), so it is held constant.
    logit = jnp.einsum("Khc,hc->hK", fixed.q, k0) * scale
    peak = jax.lax.stop_gradient(jnp.maximum(fixed.peak, logit))
    new, old = jnp.exp(logit - peak), jnp.exp(fixed.peak - peak)
    others = (new[..., None] * v0[:, None] + old[..., None] * fixed.mixed) / (new + old * fixed.weight)[..., None]
    heads = jnp.concatenate([centre[None], others.transpose(1, 0, 2)])
    h = jnp.concatenate([h0, rest])
    h = layer_norm(layer.norm_attention, h + linear_rows(att.output_proj, heads.reshape(h.shape[0], -1)))
    return layer_norm(layer.norm_mlp, h + mlp_rows(layer.mlp, h))


def _centre_layer(layer: EncoderLayer, h: Float[Array, "T d_e"]) -> Float[Array, "1 d_e"]:
    """Row 0 of `layer(h)` (91): the last layer, where only the centre's row is decoded.

    With the centre as the only query, the keys and values need not be projected token by token:
    q·(W_k h_j + b_k) = (W_kᵀ q)·h_j + q·b_k, whose last term is the same for every j and cancels in
    the softmax, and Σ_j a_j (W_v h_j + b_v) = W_v (Σ_j a_j h_j) + b_v since the a_j sum to 1. That is
    O(T·d_e·heads + d_e²) instead of O(T·d_e²), and the same function."""
    att = layer.attention
    n_heads = att.num_heads
    q = _heads(att.query_proj, h[:1], n_heads)[0] / math.sqrt(att.qk_size)
    keys = jnp.einsum("hc,hcd->hd", q, att.key_proj.weight.reshape(n_heads, att.qk_size, -1))
    weights = jax.nn.softmax(h @ keys.T, axis=0)
    values = jnp.einsum("hcd,dh->hc", att.value_proj.weight.reshape(n_heads, att.vo_size, -1), h.T @ weights)
    if att.value_proj.bias is not None:
        values = values + att.value_proj.bias.reshape(n_heads, -1)
    c = layer_norm(layer.norm_attention, h[0] + att.output_proj(values.reshape(-1)))
    return layer_norm(layer.norm_mlp, c + layer.mlp(c))[None]


class LocalTransformerScore(eqx.Module):
    """s^i = transformer(tokens i, nbr_1(i), …, nbr_K(i))[0] for every particle i (F.6).

    `network` holds all the weights (a `TransformerScore`); `n_neighbours` is K. With `shift`, the
    Boltzmann-informed s_g = −g + N_g of F.3.2 (for D_g = γ, g ~ N(0, 1) at v0 = 0)."""

    network: TransformerScore
    n_neighbours: int = eqx.field(static=True)
    shift: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.n_neighbours < 1:
            raise ValueError(f"n_neighbours must be >= 1, got {self.n_neighbours}")

    @classmethod
    def build(
        cls,
        dim: int,
        embed_dim: int,
        n_layers: int,
        n_heads: int,
        mlp_width: int,
        mlp_depth: int,
        n_neighbours: int,
        zero_output: bool = False,
        shift: bool = False,
        g_features: int | None = None,
        *,
        key: PRNGKeyArray,
    ) -> "LocalTransformerScore":
        """Fresh weights, with the hyperparameters of `TransformerScore` plus K."""
        net = TransformerScore(dim, embed_dim, n_layers, n_heads, mlp_width, mlp_depth, zero_output, g_features,
                               key=key)
        return cls(net, n_neighbours, shift)

    @property
    def dim(self) -> int:
        return self.network.dim

    # ---- one particle -------------------------------------------------------------------------------

    def centre(
        self, dx: Float[Array, "T d"], g: Float[Array, "T f"]
    ) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
        """(s_x, s_g) of the centre from its T = K + 1 tokens: displacements from the centre (row 0 is
        the centre itself, displacement 0) and g (row 0 is the centre's; f = d unless the network was built
        with more g-side inputs per token). Unused outputs cost nothing under JIT (XLA drops them)."""
        h = self.network.embed(dx, g, row_major=True)
        if len(self.network.layers) > 1:
            h = self.network.layers[0](h, row_major=True)
        return self._decode_after_first_layer(h, g[0])

    def _decode_after_first_layer(
        self, h: Float[Array, "T d_e"], g_centre: Float[Array, " f"]
    ) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
        """The layers after the first (the last one for the centre's row only) and the decoders; with a
        single layer, h is the embedding and that layer is the centre-only one."""
        net = self.network
        for layer in net.layers[1:-1]:
            h = layer(h, row_major=True)
        c = _centre_layer(net.layers[-1], h)[0]
        s_x, s_g = net.decode_x(c), net.decode_g(c)
        if self.shift:
            s_g = s_g - g_centre
        return s_x, s_g

    def tokens(
        self, x: Snapshot, g: Snapshot, i: Int[Array, ""] | int, neighbours: Int[Array, " K"], box: float | None
    ) -> tuple[Float[Array, "T d"], Float[Array, "T d"]]:
        """Token inputs of particle i, gathered from the snapshot (differentiable in x and g): minimum-image
        x^j − x^i and g^j for j = i, neighbours. Only the indices are held fixed."""
        neighbours = jax.lax.stop_gradient(neighbours)
        dx = minimum_image(x[neighbours] - x[i], box)
        dx = jnp.concatenate([jnp.zeros_like(dx[:1]), dx])
        return dx, jnp.concatenate([g[i][None], g[neighbours]])

    def particle(
        self, x: Snapshot, g: Snapshot, i: Int[Array, ""] | int, neighbours: Int[Array, " K"], box: float | None
    ) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
        """(s_x^i, s_g^i) as functions of the whole snapshot (differentiate this one w.r.t. x or g)."""
        return self.centre(*self.tokens(x, g, i, neighbours, box))

    def particle_divergence(
        self, x: Snapshot, g: Snapshot, i: Int[Array, ""] | int, neighbours: Int[Array, " K"], box: float | None
    ) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
        """s_g^i and the exact d×d block ∂s_g^i/∂g^i: g^i enters token 0 only (i is not its own
        neighbour), so this is the Jacobian of the centre's output w.r.t. its own token's g, by d
        forward-mode products that share one primal evaluation.

        What does not depend on g^i is computed outside the differentiated function: the other tokens'
        embeddings and their query, key and value heads in the first layer. The products then carry
        derivatives through one token there instead of K + 1 (the result is the same)."""
        dx, gt = self.tokens(x, g, i, neighbours, box)
        net = self.network
        if len(net.layers) > 1:
            first = net.layers[0]
            rest = net.embed(dx[1:], gt[1:], row_major=True)
            fixed = fixed_tokens(first.attention, rest)

            def s_g(g_centre):
                h0 = net.embed(dx[:1], g_centre[None], row_major=True)
                return self._decode_after_first_layer(_first_layer_split(first, h0, rest, fixed), g_centre)[1]
        else:

            def s_g(g_centre):
                return self.centre(dx, gt.at[0].set(g_centre))[1]

        basis = jnp.eye(self.dim, dtype=g.dtype)
        value, columns = jax.vmap(lambda e: jax.jvp(s_g, (gt[0],), (e,)), out_axes=(None, 0))(basis)
        return value, columns.T  # columns[k] = ∂s_g/∂g_k

    # ---- many particles -----------------------------------------------------------------------------

    def _check(self, x: Snapshot, neighbours: Indices) -> None:
        if neighbours.shape[-1] != self.n_neighbours:
            raise ValueError(f"neighbour indices have {neighbours.shape[-1]} columns, the network takes "
                             f"K = n_neighbours = {self.n_neighbours}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"one snapshot of shape (N, {self.dim}) expected, got {x.shape}")

    @eqx.filter_jit
    def at(
        self, x: Snapshot, g: Snapshot, particles: Int[Array, " n"], neighbours: Indices, box: float | None
    ) -> tuple[Float[Array, "n d"], Float[Array, "n d"]]:
        """(s_x, s_g) of the listed particles (neighbours[k] are those of particles[k]); unchunked, for a
        training batch."""
        self._check(x, neighbours)
        return jax.vmap(lambda i, nb: self.particle(x, g, i, nb, box))(particles, neighbours)

    def __call__(
        self,
        x: Snapshot,
        g: Snapshot,
        neighbours: Indices,
        box: float | None,
        *,
        chunk_size: int | None = DEFAULT_CHUNK,
    ) -> Snapshot:
        """s_g of all N particles (neighbours: (N, K) indices, e.g. from `k_nearest`; every index must
        name a particle, which a complete `k_nearest` guarantees), evaluated `chunk_size` particles at a
        time (None: all at once)."""
        return self._all_particles(x, g, neighbours, box, chunk_size, s_g_only=True)

    def scores(
        self,
        x: Snapshot,
        g: Snapshot,
        neighbours: Indices,
        box: float | None,
        *,
        chunk_size: int | None = DEFAULT_CHUNK,
    ) -> tuple[Snapshot, Snapshot]:
        """(s_x, s_g) of all particles, chunked (s_x is meaningful only for a network trained on it)."""
        return self._all_particles(x, g, neighbours, box, chunk_size, s_g_only=False)

    @eqx.filter_jit
    def _all_particles(self, x, g, neighbours, box, chunk_size, s_g_only: bool):
        """Every particle, `chunk_size` at a time; with `s_g_only` the s_x decoder is never run."""
        self._check(x, neighbours)
        ids = jnp.arange(x.shape[0])

        def one(a):
            s = self.particle(x, g, a[0], a[1], box)
            return s[1] if s_g_only else s

        return _map(one, (ids, neighbours), chunk_size)

    @eqx.filter_jit
    def score_and_divergence(
        self,
        x: Snapshot,
        g: Snapshot,
        neighbours: Indices,
        box: float | None,
        *,
        chunk_size: int | None = DIVERGENCE_CHUNK,
    ) -> tuple[Snapshot, Float[Array, " N"]]:
        """(s_g^i, ∇_{g^i}·s_g^i) for all particles, exact, chunked."""
        self._check(x, neighbours)
        ids = jnp.arange(x.shape[0])

        def one(a):
            value, jac = self.particle_divergence(x, g, a[0], a[1], box)
            return value, jnp.trace(jac)

        return _map(one, (ids, neighbours), chunk_size)


def _map(f, xs, chunk_size: int | None):
    """f over the leading axis of xs, `chunk_size` at a time (vmapped within a chunk)."""
    return map_blocks(jax.vmap(f), xs, chunk_size)
