"""Score-free Ṡ_tot estimators and the accuracy table."""

import dataclasses

import numpy as np
import pytest

from activeflow.analysis.accuracy import accuracy_table
from activeflow.analysis.epr import add_score_free, epr_dataset, exact_values, summary
from activeflow.analysis.reference import active_work_epr, stein_epr
from activeflow.physics.linear import exact

THRESHOLDS = dict(z_threshold=3.0, rel_tolerance=0.05, abs_tolerance=0.01, invariant_tolerance=0.01)  # the config's accuracy block


def _mean_se(values):
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


@pytest.mark.parametrize("estimator", [active_work_epr, stein_epr], ids=["active_work", "stein"])
def test_score_free_estimators_match_the_exact_epr(linear, rng, estimator):
    ex = exact(linear)
    x, g = ex.sample(rng, 40000)
    mean, se = _mean_se(estimator(linear, x, g))
    assert abs(mean - ex.epr_total()) < 3 * se, (mean, se, ex.epr_total())
    assert se < 0.05 * ex.epr_total()  # and the test is sharp enough to mean something


def test_active_work_form_has_the_lower_variance(linear, rng):
    x, g = exact(linear).sample(rng, 5000)
    assert active_work_epr(linear, x, g).std() < stein_epr(linear, x, g).std()


def test_score_free_at_v0_zero_is_consistent_with_zero(linear, rng):
    eq = dataclasses.replace(linear, v0=0.0)
    x, g = exact(eq).sample(rng, 20000)
    np.testing.assert_array_equal(active_work_epr(eq, x, g), 0.0)
    mean, se = _mean_se(stein_epr(eq, x, g))
    assert abs(mean) < 3 * se


def _table(system, score_fn, x, g):
    ds = add_score_free(epr_dataset(score_fn, system, x, g), system)
    return accuracy_table({"lin": summary(ds, system, None)}, {"lin": {"system": "linear", "v0": system.v0}}, THRESHOLDS)


def test_accuracy_table_passes_the_exact_score_and_flags_a_wrong_one(linear, rng):
    ex = exact(linear)
    x, g = ex.sample(rng, 4000)
    good = _table(linear, ex.score_fn(), x, g).set_index("quantity")
    assert set(good.index) == {"S_tot", "S_tot_x", "S_tot_g", "E_div_v", "E_div_x_v_x", "E_div_g_v_g"}
    assert not good.off.any()
    assert good.loc["S_tot", "truth"] == "exact"
    assert abs(good.loc["S_tot", "rel_error"]) < 0.05

    exact_score = ex.score_fn()

    def wrong(x, g):  # a 20 % error in s_g
        s_x, s_g = exact_score(x, g)
        return s_x, 1.2 * s_g

    bad = _table(linear, wrong, x, g).set_index("quantity")
    assert bad.loc["S_tot", "off"] and abs(bad.loc["S_tot", "z"]) > 3


def test_score_free_truth_is_used_without_a_closed_form(ring, rng):
    # the ring has no closed form: z comes from the paired difference learned − score-free
    x = rng.uniform(-8, 8, size=(3000, 1, 1))
    g = rng.normal(scale=np.sqrt(2), size=(3000, 1, 1))
    ds = add_score_free(epr_dataset(ring.boltzmann_score, ring, x, g), ring)
    table = accuracy_table({"r": summary(ds, ring, None)}, {"r": {"system": "ring", "v0": ring.v0}}, THRESHOLDS)
    row = table.set_index("quantity").loc["S_tot"]
    assert row.truth == "score_free" and np.isnan(row.exact)
    diff = ds.epr_total.sum("particle").values - ds.score_free.values
    assert row.z == pytest.approx(diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size)))


def test_closed_forms_at_v0_zero_are_exactly_zero(linear):
    values = exact_values(dataclasses.replace(linear, v0=0.0))
    assert values == {k: 0.0 for k in values}
    assert exact_values(linear)["S_tot"] == pytest.approx(exact(linear).epr_total())
