"""The trust verdict and the convergence table: invariants judged against zero, experiments judged
against their truth, and the monitor's numbers against the linear system's exact score."""

import numpy as np
import pandas as pd
import pytest

from activeflow.analysis.accuracy import experiment_rows, verdict
from activeflow.analysis.convergence import QUANTITIES, ConvergenceMonitor, monitor_subset
from activeflow.analysis.diagnostics import invariant_off
from activeflow.analysis.epr import epr_dataset, epr_total_of
from activeflow.physics.linear import exact

THRESHOLDS = dict(z_threshold=3.0, rel_tolerance=0.05, abs_tolerance=0.01, invariant_tolerance=0.01)


@pytest.mark.parametrize(
    "mean, stderr, scale, off",
    [
        (2.0, 0.01, 100.0, True),  # 200 s.e. and 2 % of its terms
        (0.5, 0.01, 100.0, False),  # 50 s.e. but 0.5 % of its terms: within the tolerance
        (2.0, 1.0, 100.0, False),  # 2 % of its terms but 2 s.e.: within its error
        (2.0, float("nan"), 100.0, True),  # no error estimate: judged by the tolerance alone
    ],
)
def test_an_invariant_is_off_only_beyond_its_error_and_the_tolerance(mean, stderr, scale, off):
    assert invariant_off(mean, stderr, scale, THRESHOLDS) is off


def test_at_equilibrium_the_rate_invariants_have_the_floor_of_s_tot():
    """The quick preset's trained linear score at v0 = 0 (2 particles): ∇·v = −0.00042 ± 0.000008 per
    particle against terms of size 0.00085, since the exact v vanishes; below abs_tolerance/N = 0.005 it is
    not off, as Ṡ_tot is judged against abs_tolerance; ten times the floor is."""
    assert invariant_off(-0.00042, 0.000008, 0.00085, THRESHOLDS)  # without the floor
    assert not invariant_off(-0.00042, 0.000008, 0.00085, THRESHOLDS, floor=0.01 / 2)
    assert invariant_off(-0.05, 0.000008, 0.00085, THRESHOLDS, floor=0.01 / 2)


def summary_table(learned, learned_se, score_free, score_free_se, paired, paired_se):
    rows = [("S_tot", "learned", learned, learned_se), ("S_tot", "score_free", score_free, score_free_se),
            ("S_tot", "learned_minus_score_free", paired, paired_se)]
    return pd.DataFrame(rows, columns=["quantity", "estimator", "mean", "stderr"])


def diagnostics_table(off: dict[str, bool]):
    return pd.DataFrame([dict(invariant=name, mean=0.0, stderr=1.0, off=value) for name, value in off.items()])


def test_an_experiment_is_trusted_only_when_its_value_and_every_invariant_agree():
    good = summary_table(100.0, 1.0, 100.5, 1.5, -0.5, 0.3)  # −0.5 %, 1.7 s.e.
    short = summary_table(94.0, 1.0, 100.0, 1.5, -6.0, 0.3)  # −6 %, 20 s.e.
    clean = diagnostics_table({"div_v": False, "sm_identity_x": False})
    broken = diagnostics_table({"div_v": True, "sm_identity_x": False})
    assert verdict(good, clean, THRESHOLDS) == (True, "")
    assert verdict(short, clean, THRESHOLDS) == (False, "S_tot off")
    assert verdict(good, broken, THRESHOLDS) == (False, "div_v off")
    assert verdict(short, broken, THRESHOLDS) == (False, "S_tot off; div_v off")
    rows = experiment_rows("trap-v0_0.5", "trap", 0.5, short, THRESHOLDS, broken)
    assert [r["trusted"] for r in rows] == [False] and rows[0]["truth"] == "score_free"
    assert rows[0]["rel_error"] == pytest.approx(-0.06) and rows[0]["z"] == pytest.approx(-20.0)


def test_the_monitor_takes_snapshots_round_robin_over_the_replicas():
    replica = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert monitor_subset(replica, 3).tolist() == [0, 3, 5]  # the first of each replica
    assert monitor_subset(replica, 5).tolist() == [0, 1, 3, 4, 5]  # then the second of each
    assert monitor_subset(replica, 8).tolist() == list(range(8))


def test_the_convergence_rows_of_the_exact_score_are_the_closed_forms(linear, rng):
    """With the exact score of the linear system on exact samples: Ṡ_tot is the closed form, the
    score-free estimate agrees with it, and both identities are zero, each within 4 standard errors;
    the Boltzmann score, wrong away from v0 = 0, is caught by the paired gap."""
    ex = exact(linear)
    x, g = ex.sample(rng, 4000)
    replica = np.arange(4000) // 4
    monitor = ConvergenceMonitor(linear, x, g, replica)
    monitor(ex.score_fn(), 100)
    table = monitor.table().set_index("quantity")
    assert list(table.index) == list(QUANTITIES) and (table.step == 100).all()
    truth = ex.epr_total()
    assert abs(table.loc["S_tot", "value"] - truth) < 4 * table.loc["S_tot", "stderr"]
    assert abs(table.loc["S_tot_score_free", "value"] - truth) < 4 * table.loc["S_tot_score_free", "stderr"]
    for name in ("S_tot_gap", "sm_identity_x", "sm_identity_g"):
        assert abs(table.loc[name, "value"]) < 4 * table.loc[name, "stderr"], name

    monitor(linear.boltzmann_score, 200)
    wrong = monitor.table().query("step == 200").set_index("quantity")
    assert abs(wrong.loc["S_tot_gap", "value"]) > 10 * wrong.loc["S_tot_gap", "stderr"]


def test_the_total_epr_without_divergences_equals_the_full_evaluation(linear, rng):
    ex = exact(linear)
    x, g = ex.sample(rng, 300)
    full = epr_dataset(ex.score_fn(), linear, x, g).epr_total.sum("particle").values
    np.testing.assert_allclose(epr_total_of(ex.score_fn(), linear, x, g, chunk=64), full, rtol=1e-10)


def test_mips_systems_join_the_accuracy_table_and_figure(tmp_path):
    """A MIPS by-phase row becomes the S_tot row of its system, with its own verdict, and the figure draws
    it as the ratio to the truth."""
    import matplotlib

    matplotlib.use("Agg")
    from activeflow.analysis.accuracy import accuracy_table
    from activeflow.figures.accuracy import accuracy_figure

    def phases(learned, trusted, why):
        return pd.DataFrame([dict(v0=0.025, S_tot_learned=learned, S_tot_learned_stderr=0.01 * learned,
                                  S_tot_score_free=1.2, S_tot_score_free_stderr=0.01, S_tot_rel_error=learned / 1.2 - 1,
                                  S_tot_z=-50.0, S_tot_off=not trusted, trusted=trusted, why=why)])

    table = accuracy_table({}, {}, THRESHOLDS, mips={"mips/train": phases(5e-5, False, "S_tot off"),
                                                     "mips/transfer/n64-phi0.5": phases(1.19, True, float("nan"))})
    rows = table.set_index("experiment")
    assert list(rows.system) == ["mips", "mips"] and set(rows.truth) == {"score_free"}
    assert not rows.loc["mips/train", "trusted"] and rows.loc["mips/train", "why"] == "S_tot off"
    assert rows.loc["mips/transfer/n64-phi0.5", "trusted"] and rows.loc["mips/transfer/n64-phi0.5", "why"] == ""
    assert rows.loc["mips/train", "reference"] == 1.2 and rows.loc["mips/train", "learned"] == 5e-5
    fig = accuracy_figure(table)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].get_yticks()) == 2

    # the active solid's sides: the truth is the closed form, and the figure draws the ratio to it
    solid = phases(7.6, False, "S_tot off").assign(S_tot_exact=8.0, S_tot_score_free=8.0, S_tot_score_free_stderr=0.0)
    table = accuracy_table({}, {}, THRESHOLDS, lattice={"lattice/n64": solid})
    row = table.set_index("experiment").loc["lattice/n64"]
    assert row.system == "lattice" and row.truth == "exact" and row.exact == 8.0 and not row.trusted
    fig = accuracy_figure(table)
    assert fig.axes[0].get_title() == "active solid (ε = 0)"
    np.testing.assert_allclose(np.asarray(fig.axes[0].lines[0].get_xdata(), float), [7.6 / 8.0])


def perturbed_score(ex, error: float, rng: np.random.Generator):
    """The exact linear score plus a generic linear error: s = −(P* + E)r, E random symmetric, scaled so
    that the error's rms is `error` times the exact score's rms."""
    import jax.numpy as jnp

    P = ex.precision
    E = rng.normal(size=P.shape)
    E = E + E.T
    E *= error * np.sqrt(np.trace(P @ P @ ex.covariance) / np.trace(E @ E @ ex.covariance))
    Q = jnp.asarray(P + E)
    nd = ex.n_particles * ex.dim

    def score(x, g):
        s = -Q @ jnp.concatenate([x.ravel(), g.ravel()]).astype(Q.dtype)
        return s[:nd].reshape(x.shape), s[nd:].reshape(g.shape)

    return score


@pytest.mark.parametrize("v0", [0.5, 1.0])
def test_the_verdict_trusts_the_exact_score_and_a_converged_one_and_no_other(v0, rng):
    """Calibrated where every value is exact (the quick preset's linear system, exact samples): the exact
    score and a 1 % score error are trusted; a 10 % score error and the Boltzmann score are not. The 10 %
    error is caught by the FPE invariants even where Ṡ_tot, whose error is of second order for a gradient
    field, stays within 5 % (v0 = 1)."""
    from activeflow.analysis.diagnostics import invariants
    from activeflow.analysis.diagnostics import summary as diagnostics_summary
    from activeflow.analysis.epr import add_score_free
    from activeflow.analysis.epr import summary as epr_summary
    from activeflow.physics.systems import make_system

    system = make_system("linear", dict(mu=1.0, v0=v0, gamma=0.1, eps=0.1, trap=1.0, spring=0.5, n_particles=2,
                                        dim=2))
    ex = exact(system)
    x, g = ex.sample(rng, 8000)
    replica = np.arange(8000)

    def judge(score_fn):
        ds = add_score_free(epr_dataset(score_fn, system, x, g), system)
        table = epr_summary(ds, system, replica)
        diagnostics = diagnostics_summary(invariants(ds), replica, THRESHOLDS)
        trusted, why = verdict(table, diagnostics, THRESHOLDS)
        learned = table.query("quantity == 'S_tot' and estimator == 'learned'")["mean"].iloc[0]
        return trusted, why, learned / ex.epr_total() - 1

    assert judge(ex.score_fn())[:2] == (True, "")
    assert judge(perturbed_score(ex, 0.01, rng))[:2] == (True, "")
    trusted, why, rel = judge(perturbed_score(ex, 0.10, rng))
    assert not trusted and any(f"{name} off" in why for name in ("fpe_residual", "div_v", "v_dot_s")), why
    if v0 == 1.0:
        assert abs(rel) < 0.05 and "S_tot off" not in why, (why, rel)
    trusted, why, _ = judge(system.boltzmann_score)
    assert not trusted and "S_tot off" in why


def test_the_fpe_residual_is_judged_against_its_four_terms_not_their_noise():
    """The numbers of a trained linear score at v0 = 1 (quick preset): ∇·v and v·s have zero mean for the
    exact score, so the sizes of the two halves measure only noise (scale 0.035, and a residual of
    −0.0016 ± 0.0004 was 5 % of it); the four terms, the x and g parts of each, are of size 1.6 each, and
    against them the residual is 0.03 %: not off. E[∇·v] = 0.0127 ± 0.0007 is likewise 0.4 % of its parts."""
    import xarray as xr

    from activeflow.analysis.diagnostics import invariants
    from activeflow.analysis.diagnostics import summary as diagnostics_summary

    rng = np.random.default_rng(0)
    n = 4000
    div_x = 1.64 + 0.01 * rng.normal(size=n)
    div_g = -1.6273 + 0.01 * rng.normal(size=n)
    vs_x = -1.60 + 0.01 * rng.normal(size=n)
    vs_g = 1.5857 + 0.01 * rng.normal(size=n)
    # one particle, d = 1: v_x·s_x = vs_x with s_x = 1
    one = np.ones((n, 1, 1))
    epr = xr.Dataset({
        "div_x_v_x": (("sample", "particle"), div_x[:, None]), "div_g_v_g": (("sample", "particle"), div_g[:, None]),
        "v_x": (("sample", "particle", "dim"), vs_x[:, None, None]), "s_x": (("sample", "particle", "dim"), one),
        "v_g": (("sample", "particle", "dim"), vs_g[:, None, None]), "s_g": (("sample", "particle", "dim"), one),
        "div_s_x": (("sample", "particle"), -np.ones((n, 1))), "div_s_g": (("sample", "particle"), -np.ones((n, 1))),
    })
    table = diagnostics_summary(invariants(epr), None, THRESHOLDS).set_index("invariant")
    assert table.loc["fpe_residual", "scale"] == pytest.approx(1.64 + 1.6273 + 1.60 + 1.5857, rel=1e-2)
    assert abs(table.loc["fpe_residual", "mean"]) > 3 * table.loc["fpe_residual", "stderr"]  # resolved
    assert not table.loc["fpe_residual", "off"] and not table.loc["div_v", "off"]

    rows = [("E_div_v", "learned", 0.0127, 0.0007), ("E_div_v", "exact", 0.0, 0.0),
            ("E_div_x_v_x", "learned", 1.64, 0.01), ("E_div_x_v_x", "exact", 1.64, 0.0),
            ("E_div_g_v_g", "learned", -1.6273, 0.01), ("E_div_g_v_g", "exact", -1.64, 0.0),
            ("S_tot", "learned", 1.0, 0.001), ("S_tot", "exact", 1.002, 0.0)]
    summary = pd.DataFrame(rows, columns=["quantity", "estimator", "mean", "stderr"])
    off = {r["quantity"]: r["off"] for r in experiment_rows("linear-v0_1", "linear", 1.0, summary, THRESHOLDS)}
    assert off == {"S_tot": False, "E_div_v": False, "E_div_x_v_x": False, "E_div_g_v_g": False}
