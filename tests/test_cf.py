"""CF-1.11 metadata: the checker refuses what it should, and `write_netcdf` writes what it checks
(global attributes, units, flags, bounds, compression). Every file of the end-to-end run is checked
in test_workflow.py."""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from activeflow import io
from activeflow.io import cf


def good() -> xr.Dataset:
    ds = xr.Dataset(
        {
            "density": (("y", "x"), np.ones((2, 3)), cf.attrs("density", "length_unit-2")),
            "phase": (("y", "x"), np.zeros((2, 3), np.int8), cf.flag_attrs("phase", ["gas", "surface", "interior"])),
        },
        coords={"x": ("x", [0.5, 1.5, 2.5], cf.attrs("x", cf.LENGTH)), "y": ("y", [1.0, 3.0], cf.attrs("y", cf.LENGTH))},
    )
    ds = cf.with_bounds(cf.with_bounds(ds, "x", np.array([0.0, 1, 2, 3])), "y", np.array([0.0, 2, 4]))
    return ds.assign_attrs(cf.global_attrs(dict(stage="aggregate_map"), "0.1.0", "2026-01-01T00:00:00+00:00"))


def test_a_complete_dataset_has_no_problems():
    assert cf.problems(good()) == []


@pytest.mark.parametrize("units, ok", [
    ("1", True), ("length_unit", True), ("time_unit-1", True), ("length_unit time_unit-1", True),
    ("length_unit-1 time_unit-1/2", True), ("length_unit2 time_unit-2", True),
    ("m", False), ("", False), (None, False), ("length_unit length_unit", False), ("length_unit^2", False),
])
def test_units_grammar(units, ok):
    assert cf.valid_units(units) is ok


def test_each_defect_is_named():
    ds = good()
    ds.density.attrs["units"] = "m s-1"
    del ds.x.attrs["long_name"]
    ds.phase.attrs["flag_meanings"] = "gas surface"
    ds = ds.drop_vars("y_bounds")
    del ds.attrs["references"]
    found = "\n".join(cf.problems(ds))
    for expected in ("density: units 'm s-1'", "x: no long_name", "phase: 3 flag_values but 2 flag_meanings",
                     "bounds variable 'y_bounds' missing", "'references' missing"):
        assert expected in found, found
    ds = good()
    ds["phase"] = ds.phase.copy(data=np.full((2, 3), 5, np.int8))
    assert any("outside flag_values" in p for p in cf.problems(ds))


def test_write_netcdf_refuses_a_variable_without_units_and_writes_nothing(tmp_path):
    ds = xr.Dataset({"v": ("sample", np.arange(3.0), {"long_name": "speed"})})
    with pytest.raises(ValueError, match="v: units None"):
        io.write_netcdf(ds, tmp_path / "v.nc", dict(stage="compute_epr"))
    assert list(tmp_path.iterdir()) == []


def test_written_file_is_cf_compressed_and_keeps_provenance(tmp_path):
    ds = good()
    ds.attrs.clear()
    io.write_netcdf(ds, tmp_path / "m.nc", dict(stage="aggregate_map", bins=[3, 2]))
    back = io.read_netcdf(tmp_path / "m.nc")
    assert cf.problems(back) == []
    assert back.attrs["Conventions"] == "CF-1.11" and "2309.12991" in back.attrs["references"]
    assert back.attrs["history"].startswith(back.attrs["created"]) and io.stage_info(back)["bins"] == [3, 2]
    assert back.x.attrs["bounds"] == "x_bounds" and back.x_bounds.dims == ("x", "nv")
    np.testing.assert_array_equal(back.phase.attrs["flag_values"], [0, 1, 2])
    with netCDF4.Dataset(tmp_path / "m.nc") as nc:
        assert nc["density"].filters()["zlib"] and nc["x_bounds"].filters()["zlib"]
