"""Files: model round trip, provenance, atomic writes, clear errors for missing or corrupt inputs."""

import errno
import json
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from activeflow import io, logs
from activeflow.io import cf, samples
from activeflow.models import registry
from activeflow.stages import compute_epr, train_score

NETWORK = dict(kind="mlp", width=8, depth=2, periodic=True, boltzmann_shift=True)
PARAMS = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, L=16.0)


def test_model_round_trip(tmp_path):
    spec = registry.model_spec("ring", PARAMS, NETWORK)
    model = registry.build_model(spec, jax.random.key(7))
    io.save_model(model, spec, tmp_path / "m.eqx", tmp_path / "m.json")
    loaded, spec2 = io.load_model(tmp_path / "m.eqx", tmp_path / "m.json")
    assert spec2 == json.loads(json.dumps(spec))
    x, g = jnp.array([[1.3]]), jnp.array([[0.2]])
    np.testing.assert_array_equal(model(x, g)[0], loaded(x, g)[0])
    np.testing.assert_array_equal(model(x, g)[1], loaded(x, g)[1])
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_model_with_wrong_spec_is_named(tmp_path):
    spec = registry.model_spec("ring", PARAMS, NETWORK)
    io.save_model(registry.build_model(spec, None), spec, tmp_path / "m.eqx", tmp_path / "m.json")
    other = registry.model_spec("ring", PARAMS, dict(NETWORK, width=16))
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="m.eqx: weights are truncated or do not match"):
        io.load_model(tmp_path / "m.eqx", tmp_path / "other.json")


def test_netcdf_provenance_and_errors(tmp_path):
    ds = xr.Dataset({"x": (("sample",), np.arange(3.0), cf.attrs("position", cf.LENGTH))})
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


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _hdf_error(*args, **kwargs):  # what netCDF4 raises when HDF5 cannot write (disk full)
    raise RuntimeError("NetCDF: HDF error")


@pytest.mark.parametrize("what", ["csv", "netcdf", "figure"])
def test_a_failed_write_is_one_line_naming_the_output_and_leaves_nothing(tmp_path, monkeypatch, caplog, what):
    """Disk full, simulated where each writer writes (pandas, netCDF4, matplotlib): the stage ends with one
    logged line (output, cause, free space) and exit status 1, and no file or partial file is left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / f"out.{dict(csv='csv', netcdf='nc', figure='png')[what]}"
    if what == "csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full)
        write = lambda: io.write_csv(pd.DataFrame(dict(a=[1.0])), target)  # noqa: E731
        cause = "No space left on device (ENOSPC)"
    elif what == "netcdf":
        monkeypatch.setattr(xr.Dataset, "to_netcdf", _hdf_error)
        ds = xr.Dataset(dict(a=("x", np.zeros(3), dict(long_name="a", units="1"))))
        write = lambda: io.write_netcdf(ds, target, dict(stage="test"))  # noqa: E731
        cause = "NetCDF: HDF error"
    else:
        fig = plt.figure()
        monkeypatch.setattr(fig, "savefig", _disk_full)
        write = lambda: io.save_figure(fig, target)  # noqa: E731
        cause = "No space left on device (ENOSPC)"
    with caplog.at_level("ERROR", logger="activeflow"), pytest.raises(SystemExit) as exit_:
        logs.run_stage(write)
    assert exit_.value.code == 1
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"could not write {target}: {cause}; ") and "MB free on its file system" in message
    assert list(tmp_path.iterdir()) == []


def test_an_error_that_is_not_a_write_failure_keeps_its_type(tmp_path):
    with pytest.raises(RuntimeError, match="a bug"):
        with io.atomic_path(tmp_path / "out.csv"):
            raise RuntimeError("a bug")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_a_plain_write_would(tmp_path, umask):
    """Group-readable where the umask allows it (a shared project directory), as `open(…, "w")` leaves a
    file: not the temporary file's private 0o600. NetCDF, CSV and figures all go through `atomic_path`."""
    import os
    import stat

    import pandas as pd

    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        io.write_csv(pd.DataFrame(dict(a=[1])), tmp_path / "table.csv")
        with io.atomic_path(tmp_path / "data.nc") as tmp:
            tmp.write_bytes(b"data")
    finally:
        os.umask(old)
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert plain == 0o666 & ~umask
    for name in ("table.csv", "data.nc"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == plain, name


# Bad input files: every stage names the file and what is wrong, as one logged line and exit status 1
# (what `logs.run_stage` does in the rule scripts), before any JAX computation on the data.

TRAINING = dict(
    optimizer="adam", learning_rate=1e-3, warmup_steps=0, steps=5, batch_size=8, lambda_sm=1.0, lambda_fpe=1.0,
    clip_norm=10.0, ema_decay=0.99, resample_steps=0, log_every=5, checkpoint_every=5,
)


def _samples(path, n=16, parameters=PARAMS, shape=(1, 1), stage="simulate", nan=False):

    rng = np.random.default_rng(0)
    s = dict(x=rng.uniform(-8, 8, (n, *shape)), g=rng.normal(size=(n, *shape)), replica=np.arange(n), time=np.zeros(n))
    if nan:
        s["x"][3, 0, 0] = np.nan
    io.write_netcdf(samples.samples_dataset(s), path, dict(stage=stage, system="ring", parameters=parameters))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _model(tmp, network=NETWORK):
    spec = registry.model_spec("ring", PARAMS, network)
    io.save_model(registry.build_model(spec, jax.random.key(0)), spec, tmp / "model.eqx", tmp / "model.json")


def _train(tmp):
    return dict(stage=train_score.run, system_kind="ring", parameters=PARAMS, network=NETWORK, training=TRAINING, dt=1e-3, integrator="leimkuhler_matthews",
                seed=1, experiment="ring", samples_path=str(tmp / "samples.nc"), model_path=str(tmp / "out.eqx"),
                spec_path=str(tmp / "out.json"), csv_path=str(tmp / "out.csv"))


def _compute_epr(tmp):

    _samples(tmp / "heldout.nc")
    return dict(stage=compute_epr.run, model_path=str(tmp / "model.eqx"), spec_path=str(tmp / "model.json"),
                samples_path=str(tmp / "heldout.nc"), epr_path=str(tmp / "e.nc"), summary_path=str(tmp / "e.csv"),
                expected=dict(system="ring", parameters=PARAMS, network=NETWORK))


BAD_FILES = [
    ("samples-missing", lambda t: None, _train, "samples.nc: file does not exist"),
    ("samples-truncated", lambda t: (_samples(t / "samples.nc"), _truncate(t / "samples.nc")), _train,
     "samples.nc: not a readable NetCDF file, truncated or of another format"),
    ("samples-not-netcdf", lambda t: (t / "samples.nc").write_text("x,g\n1,2\n"), _train,
     "samples.nc: not a readable NetCDF file"),
    ("samples-other-parameters", lambda t: _samples(t / "samples.nc", parameters=dict(PARAMS, L=8.0)), _train,
     "samples.nc: simulated for another system or parameters (parameters.L: 8.0 in the file, 16.0 in the config)"),
    ("samples-other-shape", lambda t: _samples(t / "samples.nc", shape=(64, 2)), _train,
     "samples.nc: x has dims {'sample': 16, 'particle': 64, 'dim': 2}; the config's system 'ring' needs"),
    ("samples-of-another-stage", lambda t: _samples(t / "samples.nc", stage="compute_epr"), _train,
     "samples.nc: written by stage 'compute_epr', not by 'simulate'"),
    ("samples-with-nan", lambda t: _samples(t / "samples.nc", nan=True), _train,
     "samples.nc: x has 1 non-finite values (first in sample 3)"),
    ("model-missing", lambda t: None, _compute_epr, "model.eqx: file does not exist"),
    ("model-other-hyperparameters", lambda t: _model(t, dict(NETWORK, width=16)), _compute_epr,
     "model.json: the model was trained for another configuration (network.width: 16 in the file, 8 in the config)"),
    ("model-truncated", lambda t: (_model(t), _truncate(t / "model.eqx")), _compute_epr,
     "model.eqx: weights are truncated or do not match the spec in"),
    ("model-spec-not-json", lambda t: (_model(t), (t / "model.json").write_text("{oops")), _compute_epr,
     "model.json: not a model spec JSON"),
    ("model-spec-foreign-json", lambda t: (_model(t), (t / "model.json").write_text('{"a": 1}')), _compute_epr,
     "model.json: not a model spec: missing keys ['system', 'parameters', 'network', 'hyperparameters']"),
]


@pytest.mark.parametrize("make,stage,message", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_input_file_is_named_without_a_traceback(tmp_path, caplog, make, stage, message):
    make(tmp_path)
    kwargs = stage(tmp_path)
    with caplog.at_level("ERROR", logger="activeflow"), pytest.raises(SystemExit) as exit_:
        logs.run_stage(kwargs.pop("stage"), **kwargs)
    assert exit_.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and message in errors[0], errors
    assert str(tmp_path) in errors[0]  # the full path of the file at fault
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out.", "d."))]  # nothing written


def test_samples_without_provenance_are_used_with_a_warning(tmp_path, caplog):

    ds = samples.samples_dataset(dict(x=np.zeros((4, 1, 1)), g=np.zeros((4, 1, 1)), replica=np.arange(4), time=np.zeros(4)))
    with caplog.at_level("WARNING", logger="activeflow"):
        io.check_samples(ds, "s.nc", "ring", PARAMS, (1, 1))
    assert "s.nc has no provenance" in caplog.text


WRITER = """
import sys, time
from activeflow import io

class SlowFigure:  # writes half a file, then hangs: the test kills it mid-write
    def savefig(self, path, format):
        with open(path, "wb") as f:
            f.write(b"half a PNG")
            f.flush()
        print("writing", flush=True)
        time.sleep(600)

io.save_figure(SlowFigure(), sys.argv[1])
"""


def test_job_killed_while_writing_leaves_no_output(tmp_path):
    target = tmp_path / "fig.png"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not target.exists()  # Snakemake sees a missing output, never a half-written one
    leftovers = list(tmp_path.glob(".fig.png.partial-*.png"))
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half a PNG"
    io.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "other.csv")  # other targets' writes leave it alone
    assert leftovers[0].exists()
    with io.atomic_path(target) as tmp:  # the next write of the same target clears it
        tmp.write_bytes(b"complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "other.csv"]
