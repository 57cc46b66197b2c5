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
