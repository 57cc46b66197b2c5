"""Files: model round trip, provenance, atomic writes, clear errors for missing or corrupt inputs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from activeflow import io, train


NETWORK = dict(kind="mlp", width=8, depth=2, periodic=True, boltzmann_shift=True)
PARAMS = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, L=16.0)


def test_model_round_trip(tmp_path):
    spec = train.model_spec("ring", PARAMS, NETWORK)
    model = train.build_model(spec, jax.random.key(7))
    io.save_model(model, spec, tmp_path / "m.eqx", tmp_path / "m.json")
    loaded, spec2 = io.load_model(tmp_path / "m.eqx", tmp_path / "m.json")
    assert spec2 == json.loads(json.dumps(spec))
    x, g = jnp.array([[1.3]]), jnp.array([[0.2]])
    np.testing.assert_array_equal(model(x, g)[0], loaded(x, g)[0])
    np.testing.assert_array_equal(model(x, g)[1], loaded(x, g)[1])
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_model_with_wrong_spec_is_named(tmp_path):
    spec = train.model_spec("ring", PARAMS, NETWORK)
    io.save_model(train.build_model(spec, None), spec, tmp_path / "m.eqx", tmp_path / "m.json")
    other = train.model_spec("ring", PARAMS, dict(NETWORK, width=16))
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="m.eqx: weights are truncated or do not match"):
        io.load_model(tmp_path / "m.eqx", tmp_path / "other.json")


def test_netcdf_provenance_and_errors(tmp_path):
    ds = xr.Dataset({"x": (("sample",), np.arange(3.0))})
    io.write_netcdf(ds, tmp_path / "a.nc", dict(stage="test", seed=1))
    back = io.read_netcdf(tmp_path / "a.nc", required=("x",))
    assert io.stage_info(back) == dict(stage="test", seed=1)
    assert "jax" in json.loads(back.attrs["package_versions"])
    with pytest.raises(ValueError, match="missing variables"):
        io.read_netcdf(tmp_path / "a.nc", required=("g",))
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        io.read_netcdf(tmp_path / "nope.nc")
    (tmp_path / "bad.nc").write_bytes(b"not a netcdf file at all")
    with pytest.raises(ValueError, match="bad.nc: not a readable NetCDF"):
        io.read_netcdf(tmp_path / "bad.nc")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
