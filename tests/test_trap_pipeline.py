"""Trap stages: the burn-in stationarity check, spatial maps from per-particle fields, attention
rollout outputs, and the Boltzmann start of the transformer score model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from activeflow import io
from activeflow.analysis import attention, maps
from activeflow.analysis.epr import epr_dataset
from activeflow.io import cf, samples
from activeflow.models import registry
from activeflow.models.mlp import MLPScore
from activeflow.models.score_model import ScoreModel
from activeflow.models.transformer import attention_rollout
from activeflow.numerics import sampling
from activeflow.physics.systems import Linear, Trap
from activeflow.stages import aggregate_map

TRAP = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.0, gamma=0.1, eps=0.1, trap=0.05, n_particles=6, dim=2)
NETWORK = dict(kind="transformer", embed_dim=8, n_layers=1, n_heads=2, mlp_width=8, mlp_depth=1, boltzmann_shift=True)


def history(means, stderr=0.1):
    t = np.arange(len(means), dtype=float)
    return dict(time=t, x_sq=np.asarray(means, float), x_sq_stderr=np.full(len(means), stderr),
                g_sq=np.ones(len(means)), g_sq_stderr=np.full(len(means), stderr))


def test_burn_in_drift_flags_a_ramp_and_not_a_plateau():
    plateau = burn_in_z(history([5.0, 3.0, 2.05, 2.0, 1.95, 2.02, 2.0, 1.98, 2.03, 2.0, 2.01]))
    ramp = burn_in_z(history(np.linspace(5.0, 2.0, 11)))
    assert abs(plateau) < 1.0  # the early transient is in the first half, which is not compared
    assert ramp < -sampling.DRIFT_Z  # 1.5 / (0.1·√2) ≈ −10.6
    assert ramp == pytest.approx(-1.5 / (0.1 * np.sqrt(2)))


def burn_in_z(h):
    return sampling.burn_in_drift(h)["x_sq"]


def test_a_too_short_burn_in_is_reported_and_a_long_one_is_not(caplog):
    # started with variance 1/A per coordinate, relaxing at rate 2A towards ≈ ε/A: clearly visible at t = 1
    system = Linear(mu=1.0, v0=0.0, gamma=0.1, eps=0.1, trap=1.0, spring=0.0, n_particles=2, dim=2)
    with caplog.at_level("INFO", logger="activeflow.numerics.sampling"):
        short = sampling.sample(system, jax.random.key(0), 256, 1.0, 1, 0.1, 0.01)
        assert short["drift"]["x_sq"] < -sampling.DRIFT_Z
        assert "still relaxing: increase simulation.t_burn_in" in caplog.text
        caplog.clear()
        long = sampling.sample(system, jax.random.key(0), 256, 20.0, 1, 0.1, 0.01)
    assert abs(long["drift"]["x_sq"]) < sampling.DRIFT_Z
    assert "still relaxing" not in caplog.text
    ds = samples.samples_dataset(long)  # the relaxation curve travels with the samples
    assert ds.burn_in_x_sq.size == 11 and ds.attrs["burn_in_drift_z_x_sq"] == long["drift"]["x_sq"]


def particle_fields(positions, values):
    """An epr.nc-like dataset: positions (S, N, 2) and one value per particle for every mapped field."""
    s, n, _ = positions.shape
    data = {"x": (("sample", "particle", "dim"), positions)}
    for k, name in enumerate(maps.SPATIAL_FIELDS):  # v_x_sq = values, v_g_sq = 2·values, ..., div_v = 6·values
        data[name] = (("sample", "particle"), values * (k + 1))
    return xr.Dataset(data)


def test_spatial_maps_by_hand_with_masking(tmp_path):
    # grid [0, 2) x [0, 2) in 2 x 2 cells; cell (y=0, x=0) sees 3 particles, (y=1, x=1) one, others none
    positions = np.array([[[0.5, 0.5], [0.2, 0.9], [1.5, 1.5]], [[0.1, 0.1], [5.0, 5.0], [0.3, 0.3]]])
    values = np.array([[1.0, -2.0, 7.0], [4.0, 100.0, 0.0]])
    # cell (0, 0) holds 1, −2, 4 and 0 (four visits); (1, 1) holds 7 (one visit); (5, 5) is outside
    ds = maps.spatial_maps(particle_fields(positions, values), [0, 2], [0, 2], [2, 2], min_count=2)
    np.testing.assert_array_equal(ds.counts.values, [[4, 0], [0, 1]])
    assert ds.v_x_sq.values[0, 0] == pytest.approx(3.0 / 4)  # mean over visits, not over the values' sum
    assert np.isnan(ds.v_x_sq.values[1, 1])  # one visit < min_count: masked, not zero
    assert np.isnan(ds.v_x_sq.values[0, 1])
    assert ds.div_v.values[0, 0] == pytest.approx(6 * 3.0 / 4)  # each field is mapped on its own
    np.testing.assert_allclose(ds.x.values, [0.5, 1.5])
    assert ds.attrs["n_outside"] == 1
    epr_path, map_path = tmp_path / "epr.nc", tmp_path / "map.nc"
    fields = particle_fields(positions, values)
    for name in fields.variables:
        fields[name].attrs = cf.attrs(name, cf.RATE)
    io.write_netcdf(fields, epr_path, {})
    aggregate_map.run("spatial", str(map_path), dict(x_range=[0, 2], y_range=[0, 2], bins=[2, 2], min_count=1),
                      epr_path=str(epr_path))
    written = io.read_netcdf(map_path)
    assert written.v_x_sq.values[1, 1] == pytest.approx(7.0)
    np.testing.assert_array_equal(written.counts.values, ds.counts.values)


def test_spatial_maps_refuse_particles_off_the_plane():
    one_d = xr.Dataset({"x": (("sample", "particle", "dim"), np.zeros((1, 2, 1)))})
    with pytest.raises(ValueError, match="dim = 2"):
        maps.spatial_maps(one_d, [0, 1], [0, 1], [2, 2], 1)


@pytest.fixture
def model():
    spec = registry.model_spec("trap", TRAP, NETWORK)
    return registry.build_model(spec, jax.random.key(3))


@pytest.fixture
def snapshot(rng):
    return rng.normal(scale=2.0, size=(6, 2)), rng.normal(size=(6, 2))


def test_the_shifted_transformer_starts_at_the_boltzmann_score(model, snapshot):
    """At v0 = 0 the Boltzmann score is exact: the untrained model then has v ≡ 0, zero EPR density and
    zero divergence on every particle, through the same evaluation as compute_epr."""
    x, g = (jnp.asarray(a) for a in snapshot)
    s_x, s_g = model(x, g)
    b_x, b_g = model.system.boltzmann_score(x, g)
    np.testing.assert_allclose(s_x, b_x, atol=1e-12)
    np.testing.assert_allclose(s_g, b_g, atol=1e-12)
    ds = epr_dataset(model, model.system, snapshot[0][None], snapshot[1][None])
    for name in ("epr_total", "div_v", "v_g_sq"):
        np.testing.assert_allclose(ds[name].values, 0.0, atol=1e-9)
    assert np.abs(ds.div_g_v_g.values).max() == pytest.approx(0.0, abs=1e-9)


def test_example_particles_run_from_the_centre_outwards():
    x = np.array([[3.0, 0.0], [0.1, 0.0], [0.0, 9.0], [1.0, 1.0], [-5.0, 0.0]])
    np.testing.assert_array_equal(attention.example_particles(x, 3), [1, 0, 2])  # radii 0.1, 3, 9
    np.testing.assert_array_equal(attention.example_particles(x, 1), [1])


def test_rollout_dataset_rows_are_distributions(model, snapshot):
    ds = attention.rollout_dataset(model, *snapshot, n_examples=2)
    assert ds.rollout.shape == (6, 6) and ds.layer_attention.shape == (1, 6, 6)
    np.testing.assert_allclose(ds.rollout.sum("source"), 1.0, rtol=1e-5)
    assert (np.diag(ds.rollout.values) >= 0.5 - 1e-6).all()  # the residual identity's half
    np.testing.assert_allclose(ds.rollout, attention_rollout(model, *snapshot), rtol=1e-6)
    mlp = ScoreModel(MLPScore(6, 2, 4, 1, None, key=jax.random.key(0)), Trap(**TRAP), shift=False)
    with pytest.raises(TypeError, match="transformer"):
        attention.rollout_dataset(mlp, *snapshot, n_examples=1)
