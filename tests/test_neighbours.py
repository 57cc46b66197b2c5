"""Cell-list / Verlet-list neighbour search: the same pairs as brute force, overflow detected and named,
rebuilt only when needed yet always complete, k nearest neighbours, and no N×N array."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activeflow.physics import neighbours
from activeflow.physics.neighbours import NeighbourOverflow, NeighbourSearch, _compact


def brute_force_distances(x: np.ndarray, box: float) -> np.ndarray:
    dx = x[:, None, :] - x[None, :, :]
    dx -= box * np.round(dx / box)
    r = np.sqrt((dx**2).sum(-1))
    np.fill_diagonal(r, np.inf)
    return r


def neighbour_sets(indices: np.ndarray, n: int) -> list[set[int]]:
    return [set(int(j) for j in row if j < n) for row in np.asarray(indices)]


def clustered(rng, n: int, box: float, dim: int = 2) -> np.ndarray:
    """Half uniform, half packed in a small corner region straddling the periodic boundary."""
    x = rng.uniform(-box / 2, box / 2, size=(n, dim))
    x[: n // 2] = box / 2 + rng.uniform(-2.5, 2.5, size=(n // 2, dim))
    return x


SEARCHES = {
    # name: (n, box, cutoff, skin, dim, clustered); 8 cells a side, 2 cells a side (stencil collapses), 3-d
    "many cells": (300, 30.0, 3.0, 0.5, 2, False),
    "clustered": (300, 30.0, 3.0, 0.5, 2, True),
    "two cells a side": (60, 8.0, 3.5, 0.5, 2, False),
    "three cells a side": (60, 10.5, 3.0, 0.5, 2, False),
    "3-d": (200, 12.0, 2.5, 0.3, 3, False),
}


@pytest.mark.parametrize("name", SEARCHES)
def test_list_equals_brute_force(name, rng):
    n, box, cutoff, skin, dim, cluster = SEARCHES[name]
    x = clustered(rng, n, box, dim) if cluster else rng.uniform(-box / 2, box / 2, size=(n, dim))
    search = NeighbourSearch(box=box, cutoff=cutoff, skin=skin, dim=dim, cell_capacity=n, max_neighbours=n)
    nl = jax.jit(search.build)(jnp.asarray(x))
    assert not search.overflowed(nl)
    r = brute_force_distances(x, box)
    expected = [set(np.flatnonzero(row < cutoff + skin)) for row in r]
    assert neighbour_sets(nl.indices, n) == expected
    assert int(nl.max_neighbour_count) == max(len(s) for s in expected)
    # each row lists distinct particles, padding last
    for row in np.asarray(nl.indices):
        real = row[row < n]
        assert len(set(real)) == len(real) and np.all(row[len(real):] == n)


def test_cells_hold_each_particle_once_in_its_own_cell(rng):
    n, box = 300, 30.0
    x = clustered(rng, n, box)
    search = NeighbourSearch(box=box, cutoff=3.0, skin=0.5, cell_capacity=n, max_neighbours=8)
    table, max_count = jax.jit(search.cells)(jnp.asarray(x))
    table = np.asarray(table)
    members = table[table < n]
    assert sorted(members) == list(range(n))
    m = search.cells_per_side
    cell_of = np.clip(np.floor(np.mod(x, box) / (box / m)).astype(int), 0, m - 1) @ np.array([m, 1])
    for c, row in enumerate(table):
        assert np.all(cell_of[row[row < n]] == c)
    assert int(max_count) == np.bincount(cell_of).max()


def test_cell_binning_by_packed_key_equals_argsort(rng, monkeypatch):
    """Both ways of binning (packed-key sort, and the argsort used when cell·N overflows int32) give
    the same table: each cell's particles in index order."""
    n, box = 300, 30.0
    x = jnp.asarray(clustered(rng, n, box))
    search = NeighbourSearch(box=box, cutoff=3.0, skin=0.5, cell_capacity=n, max_neighbours=8)
    packed = jax.jit(lambda x: search.cells(x))(x)
    monkeypatch.setattr(neighbours, "PACKED_KEY_LIMIT", 0)
    sorted_ = jax.jit(lambda x: search.cells(x))(x)
    np.testing.assert_array_equal(packed[0], sorted_[0])
    assert int(packed[1]) == int(sorted_[1])
    for row in np.asarray(packed[0]):
        assert np.all(np.diff(row[row < n]) > 0)


def test_build_in_blocks_equals_one_block(rng, monkeypatch):
    """The build works on blocks of rows (the last one padded): the list does not depend on the block size."""
    n, box = 300, 30.0
    x = jnp.asarray(clustered(rng, n, box))
    search = NeighbourSearch(box=box, cutoff=3.0, skin=0.5, cell_capacity=n, max_neighbours=40)
    whole = jax.jit(lambda x: search.build(x))(x)
    monkeypatch.setattr(neighbours, "BUILD_BLOCK", 64)  # 5 blocks, 20 padding rows
    blocked = jax.jit(lambda x: search.build(x))(x)  # a new function: traced again, with the new block
    np.testing.assert_array_equal(whole.indices, blocked.indices)
    assert int(whole.max_neighbour_count) == int(blocked.max_neighbour_count)


@pytest.mark.parametrize("columns", [9, 13, 81, 200])  # 1 group; padded (13 is prime); 9; 20 (searched)
@pytest.mark.parametrize("width", [1, 5, 12, 90])
def test_compact_moves_kept_entries_to_the_front_in_order(rng, width, columns):
    values = jnp.asarray(rng.integers(0, 50, size=(40, columns)), dtype=jnp.int32)
    keep = jnp.asarray(rng.random((40, columns)) < 0.4)
    keep = keep.at[0].set(False).at[1].set(True)  # an empty and a full row
    out, counts = _compact(values, keep, width, fill=-1)
    for v, k, o, c in zip(np.asarray(values), np.asarray(keep), np.asarray(out), np.asarray(counts)):
        kept = v[k]
        assert c == len(kept)
        expected = np.full(width, -1)
        expected[: min(width, len(kept))] = kept[:width]
        np.testing.assert_array_equal(o, expected)


def test_overflow_is_detected_named_and_fixed_by_growing(rng):
    n, box = 300, 30.0
    x = jnp.asarray(clustered(rng, n, box))
    r = brute_force_distances(np.asarray(x), box)
    expected = [set(np.flatnonzero(row < 3.5)) for row in r]
    tight_cells = NeighbourSearch(box=box, cutoff=3.0, skin=0.5, cell_capacity=2, max_neighbours=80)
    tight_list = dataclasses.replace(tight_cells, cell_capacity=40, max_neighbours=3)
    for search, setting in ((tight_cells, "cell_capacity=2"), (tight_list, "max_neighbours=3")):
        nl = jax.jit(search.build)(x)
        assert search.overflowed(nl)
        with pytest.raises(NeighbourOverflow, match=setting):
            search.check(nl)
        grown = search.grown(nl)
        nl = jax.jit(grown.build)(x)
        if grown.overflowed(nl):  # a cell overflow hid neighbours: one more round is allowed
            grown = grown.grown(nl)
            nl = jax.jit(grown.build)(x)
        grown.check(nl)
        assert neighbour_sets(nl.indices, n) == expected
    # a snug fit to what was seen is smaller and still holds everything
    snug = grown.fitted(nl, margin=1.0)
    assert snug.max_neighbours < grown.max_neighbours
    snug.check(jax.jit(snug.build)(x))


def test_update_rebuilds_only_when_needed_and_stays_complete(rng):
    """A random walk: after each update every pair within the cut-off is listed, and the list is rebuilt
    exactly when some particle has moved more than skin/2 since the last build."""
    n, box, cutoff, skin = 200, 25.0, 3.0, 0.6
    search = NeighbourSearch(box=box, cutoff=cutoff, skin=skin, cell_capacity=40, max_neighbours=60)
    x = rng.uniform(-box / 2, box / 2, size=(n, 2))
    nl = jax.jit(search.build)(jnp.asarray(x))
    update = jax.jit(search.update)
    reference, rebuilds = x.copy(), 0
    for _ in range(30):
        x = x + rng.normal(scale=0.04, size=x.shape)
        moved = x - reference
        moved -= box * np.round(moved / box)
        expect_rebuild = np.max(np.sum(moved**2, -1)) > (skin / 2) ** 2
        before = int(nl.n_builds)
        nl = update(nl, jnp.asarray(x))
        assert int(nl.n_builds) == before + expect_rebuild
        if expect_rebuild:
            reference, rebuilds = x.copy(), rebuilds + 1
        r = brute_force_distances(x, box)
        listed = neighbour_sets(nl.indices, n)
        assert all(set(np.flatnonzero(row < cutoff)) <= listed[i] for i, row in enumerate(r))
    assert 0 < rebuilds < 30
    search.check(nl)


def test_nearest_neighbours_match_brute_force(rng):
    n, box, k = 300, 30.0, 6
    x = rng.uniform(-box / 2, box / 2, size=(n, 2))
    search = NeighbourSearch(box=box, cutoff=3.5, skin=0.0, cell_capacity=n, max_neighbours=40)
    nl = jax.jit(search.build)(jnp.asarray(x))
    chosen, complete = jax.jit(search.nearest, static_argnums=2)(jnp.asarray(x), nl, k)
    r = brute_force_distances(x, box)
    order = np.argsort(r, axis=1)[:, :k]
    kth = np.sort(r, axis=1)[:, k - 1]
    np.testing.assert_array_equal(np.asarray(complete), kth < 3.5)
    assert 0 < np.sum(complete) < n  # both cases occur at this density
    ok = np.asarray(complete)
    np.testing.assert_array_equal(np.asarray(chosen)[ok], order[ok])
    # a radius of half the box diagonal lists everyone: k = n - 1 is then the whole system
    small = x[:12] * (10.0 / box)
    full = NeighbourSearch(box=10.0, cutoff=7.1, skin=0.0, cell_capacity=12, max_neighbours=11)
    nearest = jax.jit(lambda y: full.nearest(y, full.build(y), 11))
    chosen, complete = nearest(jnp.asarray(small))
    assert np.all(complete)
    np.testing.assert_array_equal(np.asarray(chosen), np.argsort(brute_force_distances(small, 10.0), 1)[:, :11])


@pytest.mark.parametrize("name", SEARCHES)
def test_nearest_of_some_centres_is_nearest_of_all(name, rng):
    n, box, cutoff, skin, dim, cluster = SEARCHES[name]
    x = clustered(rng, n, box, dim) if cluster else rng.uniform(-box / 2, box / 2, size=(n, dim))
    k = 5
    centres = jnp.asarray(rng.choice(n, 40, replace=False))
    search = NeighbourSearch(box=box, cutoff=cutoff, skin=skin, dim=dim, cell_capacity=n, max_neighbours=n)
    chosen, complete = jax.jit(search.nearest_of, static_argnums=2)(jnp.asarray(x), centres, k)
    r = brute_force_distances(x, box)[np.asarray(centres)]
    np.testing.assert_array_equal(np.asarray(complete), np.sort(r, axis=1)[:, k - 1] < cutoff + skin)
    ok = np.asarray(complete)
    assert ok.any()
    np.testing.assert_array_equal(np.asarray(chosen)[ok], np.argsort(r, axis=1)[ok, :k])
    all_chosen, _ = search.nearest(jnp.asarray(x), search.build(jnp.asarray(x)), k)
    np.testing.assert_array_equal(np.asarray(chosen)[ok], np.asarray(all_chosen)[np.asarray(centres)][ok])
    # a cell that overflows makes no choice certain
    if cluster:
        small = dataclasses.replace(search, cell_capacity=4)
        assert not np.any(np.asarray(small.nearest_of(jnp.asarray(x), centres, k)[1]))


def _avals(jaxpr):
    """Every intermediate's abstract value, looking inside scan/cond/jit sub-programs."""
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            yield v.aval
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _avals(inner)


def test_no_n_by_n_array_in_build_update_and_nearest(rng):
    n = 2000
    box = float(np.sqrt(n * np.pi / 0.5))
    search = NeighbourSearch.for_density(box, 3.6, 0.5, max_density=1 / np.pi)
    x = jnp.asarray(rng.uniform(-box / 2, box / 2, size=(n, 2)))
    nl = jax.eval_shape(search.build, x)
    for fn, args in ((search.build, (x,)), (search.update, (nl, x)), (lambda x, nl: search.nearest(x, nl, 8), (x, nl)),
                     (lambda x: search.nearest_of(x, jnp.arange(64), 8), (x,))):
        sizes = [int(np.prod(a.shape)) for a in _avals(jax.make_jaxpr(fn)(*args).jaxpr) if hasattr(a, "shape")]
        assert max(sizes) < n * n / 10, max(sizes)
