"""Ṡ_tot at ε = 0 against its truth: the active solid's closed forms, the harmonic score on MIPS samples,
and score matching in g of a local transformer on both (docs/results.md, "Athermal active matter").

    python benchmarks/athermal_epr.py closed-forms
    python benchmarks/athermal_epr.py prior results/mips/train/samples.nc
    python benchmarks/athermal_epr.py learn results/mips/train/samples.nc --steps 600

`closed-forms`: per particle on the 64×64 solid (μ = k = 1, v0 = 0.025, γ = 10⁻⁴): the exact Ṡ_tot, the
denoising optimum at the noise the loss uses, and what a perfectly learned score gives from samples of
the Euler chain the simulation runs (and of a Heun step with g averaged over the step, for comparison).
`prior`: on a MIPS samples file, the truth μ⟨Δ_{x^i}Φ⟩, the harmonic score's Ṡ_tot and its mean squared
error γE|s − s*|², which score matching measures without knowing s* (E|s*_g|² = μE[ΔΦ]/γ + d per particle).
`learn`: the library's imbalance score (`models.imbalance`: the local transformer fed g^j + μF^j/v0 in
units of η = √(γ/μk), s_g = −g + N/η; with `--contacts`, also each pair's contact term), trained by score
matching in g on 16 exact samples of the solid and on the MIPS file's snapshots (the last two held out),
each evaluated against its truth.
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from activeflow.models.imbalance import ImbalanceScore, SoftDiskContacts
from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.numerics.mips_sampling import make_mips
from activeflow.physics.athermal import harmonic_score_g
from activeflow.physics.lattice import Lattice
from activeflow.physics.lattice_exact import LatticeExact, ModeCovariance
from activeflow.physics.neighbours import k_nearest, nearest_search

MIPS = dict(a=1.0, k=1.0, beta=7.5, mu=1.0, v0=0.025, gamma=1e-4, eps=0.0)
SOLID = dict(mu=1.0, v0=0.025, gamma=1e-4, eps=0.0, k=1.0, n_side=64)


def heun_chain(exact: LatticeExact, dt: float) -> ModeCovariance:
    """Stationary covariance of u' = u + Δt/2 [b(u, g) + b(u + Δt b(u, g), g')] per mode."""
    s, a = exact.system, exact.rates
    h, rho, v = a * dt, np.exp(-s.gamma * dt), s.v0 * dt
    c, e0, e1 = 1 - h + h**2 / 2, v * (1 - h) / 2, v / 2
    e = e0 + e1 * rho
    ug = (e * rho + e1 * (1 - rho**2)) / (1 - c * rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        uu = (2 * c * e * ug + e**2 + e1**2 * (1 - rho**2)) / (1 - c**2)
    return ModeCovariance(np.where(a > 0, uu, np.inf), ug, np.ones_like(a))


def closed_forms() -> None:
    exact = LatticeExact(Lattice(**SOLID))
    n = exact.system.n_particles
    print(f"64x64 solid, per particle: exact {exact.epr_g() / n:.4f}, d z mu k = {exact.epr_identity() / n:g}")
    for sx, sg in [(0.1, 0.1), (0.01, 0.01), (0.0, 1e-3), (0.0, 1e-4)]:
        print(f"  denoising optimum sigma_x = {sx:g}, sigma_g = {sg:g}: {exact.smoothed_epr_g(sx, sg) / n:.4g}")
    for dt in (0.1, 0.05, 0.02, 0.01):
        heun = heun_chain(exact, dt)
        print(f"  dt = {dt:g}: Euler chain's own score {exact.chain_epr_g(dt) / n:.4f}, "
              f"Heun chain's {exact.epr_g_of(heun, heun) / n:.4f}")


def prior(path: str) -> None:
    ds = xr.open_dataset(path).load()
    system = make_mips(MIPS | dict(phi=float(ds.attrs["phi"]), n_particles=int(ds.attrs["n_particles"])),
                       dict(force_tolerance=1e-6))
    score = jax.jit(lambda x, g: harmonic_score_g(system, x, g))
    truth_of = jax.jit(lambda x: -system.mu * jnp.mean(system.force_divergence(x)))
    rows = []
    for x, g in zip(ds.x.values, ds.g.values):
        x, g = jnp.asarray(x), jnp.asarray(g)
        s, div = score(x, g)
        truth = float(truth_of(x))
        sm = float(jnp.mean(jnp.sum(s**2, -1) + 2 * div))
        rows.append((truth, system.gamma * float(jnp.mean(jnp.sum((g + s) ** 2, -1))),
                     system.gamma * (sm + truth / system.gamma + 2)))
    m, se = np.mean(rows, 0), np.std(rows, 0, ddof=1) / np.sqrt(len(rows))
    print(f"{path} ({len(rows)} snapshots), per particle: truth {m[0]:.4f} ± {se[0]:.4f}; harmonic score "
          f"{m[1]:.4f} ± {se[1]:.4f} (ratio {m[1] / m[0]:.2f}), gamma*MSE {m[2]:.4f} (that of s_g = -g: {m[0]:.4f})")


def learn(system, xs, gs, forces, box, held_out, steps, truths, width=32, k=16, lr=1e-3, batch=256, layers=2,
          contacts=False):
    """Score matching in g of the library's imbalance score (`models.imbalance`) on the snapshots but the
    last `held_out`, evaluated on those against their truths (Ṡ_tot per particle). The forces come from the
    stored positions in their own precision; the training runs in float32, as the workflow's."""
    eta = (system.gamma / (system.mu * system.k)) ** 0.5
    net = LocalTransformerScore.build(2, width, layers, 2, 2 * width, 1, k, zero_output=True,
                                      g_features=4 if contacts else None, key=jax.random.key(0))
    pair = SoftDiskContacts(system.a, system.k, system.beta) if contacts else None
    model = ImbalanceScore(net, system.mu, system.v0, eta, pair)
    xs, gs, forces = (jnp.asarray(a, jnp.float32) for a in (xs, gs, forces))
    search = nearest_search(xs, box, k)
    n_train = xs.shape[0] - held_out

    def loss(m, x, g, force, particles):
        indices, _ = k_nearest(search, x, k, particles)
        s, div = m.at(x, g, force, particles, indices, box)
        return system.gamma * jnp.mean(jnp.sum(s**2, -1) + 2 * div)

    opt = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(optax.warmup_cosine_decay_schedule(0, lr, 100, steps)))
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(m, state, key):
        ks, kp = jax.random.split(key)
        s = jax.random.randint(ks, (), 0, n_train)
        particles = jax.random.choice(kp, xs.shape[1], (batch,), replace=False)
        value, grads = eqx.filter_value_and_grad(loss)(m, xs[s], gs[s], forces[s], particles)
        updates, state = opt.update(grads, state, eqx.filter(m, eqx.is_array))
        return eqx.apply_updates(m, updates), state, value

    start = time.perf_counter()
    for i in range(steps):
        model, state, value = step(model, state, jax.random.fold_in(jax.random.key(5), i))
    print(f"  {steps} steps in {time.perf_counter() - start:.0f} s, last loss {float(value):.4f} (gamma units)")
    for s in range(n_train, xs.shape[0]):
        indices, _ = k_nearest(search, xs[s], k)
        s_g, div = model.score_and_divergence(xs[s], gs[s], indices, box, force=forces[s])
        epr = system.gamma * jnp.sum((gs[s] + s_g) ** 2, -1)
        truth = truths[s]
        sm = float(jnp.mean(jnp.sum(s_g**2, -1) + 2 * div))
        print(f"  held-out snapshot {s}: learned {float(epr.mean()):.4f}, truth {truth:.4f} "
              f"(ratio {float(epr.mean()) / truth:.3f}), gamma*MSE {system.gamma * (sm + truth / system.gamma + 2):.4f}")
    return model


def learn_both(path: str, steps: int, **options) -> None:
    solid = Lattice(**SOLID)
    x, g = LatticeExact(solid).sample(np.random.default_rng(0), 18)
    contacts = options.pop("contacts")
    if not options.pop("mips_only"):
        print("64x64 solid, 16 exact samples, 2 held out:")
        forces = np.stack([np.asarray(solid.force(jnp.asarray(a))) for a in x])
        learn(solid, x, g, forces, solid.box, 2, steps, [8.0 * solid.mu * solid.k] * len(x), **options)
    ds = xr.open_dataset(path).load()
    system = make_mips(MIPS | dict(phi=float(ds.attrs["phi"]), n_particles=int(ds.attrs["n_particles"])),
                       dict(force_tolerance=1e-6))
    print(f"{path} ({ds.x.dtype}), 2 held out{', contact terms' if contacts else ''}:")
    with jax.enable_x64(ds.x.dtype == np.float64):  # force and truth in the stored precision
        forces = np.stack([np.asarray(system.force(jnp.asarray(x))) for x in ds.x.values])
        truths = [float(-system.mu * jnp.mean(system.force_divergence(jnp.asarray(x)))) for x in ds.x.values]
    learn(system, ds.x.values, ds.g.values, forces, float(ds.attrs["box"]), 2, steps, truths, contacts=contacts,
          **options)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["closed-forms", "prior", "learn"])
    parser.add_argument("samples", nargs="?", default="results/mips/train/samples.nc")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--neighbours", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--contacts", action="store_true", help="tokens also carry their contact terms (MIPS)")
    parser.add_argument("--mips-only", action="store_true")
    args = parser.parse_args()
    if args.part == "closed-forms":
        closed_forms()
    elif args.part == "prior":
        prior(args.samples)
    else:
        learn_both(args.samples, args.steps, width=args.width, k=args.neighbours, layers=args.layers, batch=args.batch,
                   lr=args.learning_rate, contacts=args.contacts, mips_only=args.mips_only)
