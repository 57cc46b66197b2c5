"""The trap's learned Ṡ_tot against the amount of training data, for linear-feature classes of the prior.

    python benchmarks/trap_data_curve.py RESULTS [--v0 0.25 0.5] [--factor 8]

RESULTS is a finished run's `results/` folder (the quick preset's trap experiments): for each v0 its
training snapshots (`samples.nc`), held-out snapshots (`heldout.nc`) and prior (`model.json`'s
`network.prior`) are read; `factor − 1` times as many training replicas are simulated beside them with the
same settings and an independent key. The moments of the score-matching loss (Gram matrix and
divergences of the features, `models.features`) are summed per replica once; the class of the preset's
prior without products (its first K features, 84 for the quick prior) and with products (all of them,
588) is then fitted in closed form on the first 1, 2, 4, … factor times the preset's replicas, its ridge
cross-validated over replicas as in the stage. Each fit is evaluated on the held-out snapshots: Ṡ_tot
per snapshot against the score-free (v0/D_x) Σ g·b_x of the same snapshot (rel: the paired difference over
the reference, its s.e. over held-out replicas), and the held-out score-matching loss per particle (its
fall times ε is the fall the Pythagoras identity predicts for the gap). Prints a Markdown table.
"""

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from activeflow.analysis.epr import epr_total_of
from activeflow.analysis.reference import active_work_epr
from activeflow.models.features import Fit, LinearFeatureScore, _loss, _moments, _solve, cross_validated_ridge
from activeflow.models.registry import prior_features
from activeflow.numerics.sampling import sample
from activeflow.physics.systems import make_system
from activeflow.seeding import derive_key

jax.config.update("jax_enable_x64", True)


def replica_moments(features, x: np.ndarray, g: np.ndarray, replica: np.ndarray, n_replicas: int,
                    chunk: int = 32) -> Fit:
    """The loss's moments summed per replica: Gram (R, K, K) and divergences (R, K) in x and g. (The
    library's `feature_moments` keeps one Gram matrix per snapshot: 24 GB for 8448 snapshots of 602.)"""
    k = features.n_features
    zero = lambda xs, gs: (jnp.zeros_like(xs), jnp.zeros_like(gs))  # noqa: E731
    gram, h_x, h_g = np.zeros((n_replicas, k, k)), np.zeros((n_replicas, k)), np.zeros((n_replicas, k))
    for s in range(0, len(x), chunk):
        part = _moments(features, zero, jnp.asarray(x[s:s + chunk]), jnp.asarray(g[s:s + chunk]))
        rows = replica[s:s + chunk]
        np.add.at(gram, rows, np.asarray(part[0], np.float64))
        np.add.at(h_x, rows, np.asarray(part[1], np.float64))
        np.add.at(h_g, rows, np.asarray(part[2], np.float64))
    return Fit(gram, h_x, h_g, np.zeros_like(h_x), np.zeros_like(h_g))


def first(m: Fit, k: int, rows: slice) -> Fit:
    return Fit(m.gram[rows, :k, :k], m.h_x[rows, :k], m.h_g[rows, :k], m.a_x[rows, :k], m.a_g[rows, :k])


def one_v0(results: Path, v0: str, factor: int) -> list[dict]:
    folder = results / f"trap-v0_{v0}"
    train, held = xr.load_dataset(folder / "samples.nc"), xr.load_dataset(folder / "heldout.nc")
    info = json.loads(train.attrs["provenance"])
    system = make_system(info["system"], info["parameters"])
    sim = info["simulation"]
    # the prior of the sweep (every v0 has the same); from another v0 where this one is not trained yet
    spec = next(p for p in [folder / "model.json", *sorted(results.glob("trap-v0_*/model.json"))] if p.exists())
    prior = json.loads(spec.read_text())["network"]["prior"]
    full = prior_features(system, prior)
    base = prior_features(system, prior | {"products": False})
    n_base, n_rep = base.n_features, int(sim["n_replicas"])
    x, g, replica = train.x.values, train.g.values, train.replica.values
    if factor > 1:
        t = time.perf_counter()
        extra = sample(system, derive_key(int(info["seed"]), info["experiment"], "data_curve"),
                       n_rep * (factor - 1), float(sim["t_burn_in"]), int(sim["n_snapshots"]),
                       float(sim["t_between"]), float(sim["dt"]), sim["integrator"])
        x, g = np.concatenate([x, extra["x"]]), np.concatenate([g, extra["g"]])
        replica = np.concatenate([replica, extra["replica"] + n_rep])
        print(f"v0 = {v0}: simulated {len(extra['x'])} more snapshots in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    moments = replica_moments(full, x, g, replica, n_rep * factor)
    n_held_rep = int(held.replica.max()) + 1
    held_moments = replica_moments(full, held.x.values, held.g.values, held.replica.values, n_held_rep)
    print(f"v0 = {v0}: moments of {len(x)} + {held.sizes['sample']} snapshots, K = {full.n_features}, "
          f"in {time.perf_counter() - t:.0f} s", flush=True)
    xh, gh, rh = held.x.values, held.g.values, held.replica.values
    reference = active_work_epr(system, xh, gh)
    n_particles, per_replica_held = xh.shape[1], held.sizes["sample"] / n_held_rep
    rows = []
    for features, k in ((base, n_base), (full, full.n_features)):
        multiple = 1
        while multiple <= factor:
            m = first(moments, k, slice(0, n_rep * multiple))
            (ridge, _), _ = cross_validated_ridge(m, np.arange(n_rep * multiple), anchors=(False,))
            theta_x, theta_g = _solve(m.mean(slice(None)), ridge, False)
            score = LinearFeatureScore(features, jnp.asarray(theta_x), jnp.asarray(theta_g))
            learned = epr_total_of(score, system, xh, gh)
            diff = learned - reference
            by_rep = np.array([diff[rh == r].mean() for r in range(n_held_rep)])
            ref = reference.mean()
            held_loss = _loss(first(held_moments, k, slice(None)).mean(slice(None)), theta_x, theta_g)
            rows.append(dict(v0=v0, K=k, snapshots=n_rep * multiple * int(sim["n_snapshots"]),
                             learned=learned.mean(), reference=ref, rel=diff.mean() / ref,
                             rel_se=by_rep.std(ddof=1) / np.sqrt(n_held_rep) / ref, ridge=ridge,
                             heldout_loss=held_loss / per_replica_held / n_particles))
            print(f"  K = {k}, {rows[-1]['snapshots']} snapshots: {rows[-1]['rel']:+.2%}", flush=True)
            multiple *= 2
    return rows


def main(results: Path, v0s: list[str], factor: int) -> None:
    rows = [row for v0 in v0s for row in one_v0(results, v0, factor)]
    print("\n| v0 | K | training snapshots | learned Ṡ_tot | score-free | rel | held-out loss per particle | ridge |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['v0']} | {r['K']} | {r['snapshots']} | {r['learned']:.2f} | {r['reference']:.2f} | "
              f"{r['rel']:+.1%} ± {r['rel_se']:.1%} | {r['heldout_loss']:.3f} | {r['ridge']:g} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--v0", nargs="+", default=["0.25", "0.5"])
    parser.add_argument("--factor", type=int, default=8)
    args = parser.parse_args()
    main(args.results, args.v0, args.factor)
