"""Checkpoint and resume: a training run killed with SIGKILL, or stopped by SIGTERM between checkpoints
(which saves its state at that step), and restarted ends bitwise identical to an uninterrupted one; checkpoints of other inputs are not resumed; a divergence keeps the last good one.

Training runs that are compared bit for bit run in subprocesses (float32, as the workflow; the test
process has float64 enabled)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from activeflow import io
from activeflow.errors import InputFileError
from activeflow.io import samples
from activeflow.models import registry
from activeflow.seeding import derive_key
from activeflow.training import checkpoint, score_matching

PARAMS = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, L=16.0)
NETWORK = dict(kind="mlp", width=16, depth=2, periodic=True, boltzmann_shift=False)
TRAINING = dict(
    optimizer="adam", learning_rate=1e-3, warmup_steps=10, steps=600, batch_size=64, lambda_sm=1.0,
    lambda_fpe=1.0, clip_norm=10.0, ema_decay=0.99, resample_steps=5, log_every=50, checkpoint_every=30,
)  # 512 samples / 64 = 8 steps per epoch: checkpoints fall mid-epoch, resumed runs cross re-stepped epochs

DRIVER = """
import json, sys
from activeflow import logs
from activeflow.stages import train_score
logs.to_file(None)
logs.run_stage(train_score.run, **json.loads(sys.argv[1]))
"""


def write_samples(path: Path, n: int = 512, seed: int = 0, g_spike: tuple[int, float] | None = None) -> None:
    rng = np.random.default_rng(seed)
    s = dict(
        x=rng.uniform(-8, 8, (n, 1, 1)).astype(np.float32), g=rng.normal(0, 1, (n, 1, 1)).astype(np.float32),
        replica=np.arange(n), time=np.zeros(n),
    )
    if g_spike is not None:
        s["g"][g_spike[0]] = g_spike[1]
    io.write_netcdf(samples.samples_dataset(s), path, dict(stage="simulate", system="ring", parameters=PARAMS))


def run_args(tmp: Path, name: str, training: dict = TRAINING, samples: str = "samples.nc") -> dict:
    return dict(
        system_kind="ring", parameters=PARAMS, network=NETWORK, training=training, dt=1e-3, integrator="leimkuhler_matthews", seed=7,
        experiment="ring", samples_path=str(tmp / samples), model_path=str(tmp / f"{name}.eqx"),
        spec_path=str(tmp / f"{name}.json"), csv_path=str(tmp / f"{name}.csv"),
        checkpoint_path=str(tmp / "checkpoints" / f"{name}.ckpt"),
    )


def start(args: dict) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(args)], stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=300)
    return err


def test_killed_training_resumes_bitwise_identical(tmp_path):
    write_samples(tmp_path / "samples.nc")
    whole = start(run_args(tmp_path, "whole"))
    killed_args = run_args(tmp_path, "killed")
    proc = start(killed_args)
    seen = []
    for line in proc.stderr:  # kill at the second checkpoint: mid-run, mid-epoch, a logged row in it
        seen.append(line)
        if "checkpoint at step 60" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    ckpt = Path(killed_args["checkpoint_path"])
    step = checkpoint.read_header(ckpt)["step"]
    assert 30 <= step < TRAINING["steps"]
    assert not Path(killed_args["model_path"]).exists()  # a killed run leaves no model

    resumed = finish(start(killed_args))
    assert f"resuming from checkpoint {ckpt} at step {step} of 600" in resumed, resumed

    # SIGTERM (SLURM's preemption and time-limit signal) between checkpoints: the step in progress
    # finishes, the state is saved at that step, one line says so, and the exit status is 1
    termed_args = run_args(tmp_path, "termed")
    proc = start(termed_args)
    for line in proc.stderr:  # after the logged row of step 50, between the checkpoints at 30 and 60
        if "step 50/600" in line:
            proc.send_signal(signal.SIGTERM)
            break
    err = finish(proc)
    termed_ckpt = Path(termed_args["checkpoint_path"])
    stopped = re.search(rf"training stopped by SIGTERM at step (\d+) of 600; its state is saved in "
                        rf"{re.escape(str(termed_ckpt))}: rerun to resume from step (\d+); no model is written", err)
    assert proc.returncode == 1 and stopped and stopped[1] == stopped[2], err
    assert "Traceback" not in err
    assert checkpoint.read_header(termed_ckpt)["step"] == int(stopped[1]) >= 50
    assert not Path(termed_args["model_path"]).exists()
    resumed = finish(start(termed_args))
    assert f"resuming from checkpoint {termed_ckpt} at step {stopped[1]} of 600" in resumed, resumed

    assert "wrote" in finish(whole)
    for args in (killed_args, termed_args):
        a, b = Path(tmp_path / "whole.eqx").read_bytes(), Path(args["model_path"]).read_bytes()
        assert a == b  # bitwise identical weights
        ha, hb = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(args["csv_path"])
        pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))  # columns in order
        assert list(hb.step) == list(range(50, 601, 50))
        assert not Path(args["checkpoint_path"]).exists()  # removed once the model is saved


def test_divergence_keeps_the_last_good_checkpoint_and_writes_no_model(tmp_path):
    # A finite but huge active force overflows float32 in |s|² at the first step whose batch holds it;
    # put it in the 6th batch of the first epoch, so checkpoints at steps 2 and 4 come before.
    args = run_args(tmp_path, "m", training=dict(TRAINING, checkpoint_every=2))
    key = derive_key(7, "ring", "train", "data")
    kperm, _ = score_matching.epoch_keys(key)
    spike = int(score_matching.data_order(kperm, 0, 512)[5 * 64])
    write_samples(tmp_path / "samples.nc", g_spike=(spike, 1e30))
    proc = start(args)
    err = finish(proc)
    assert proc.returncode == 1, err
    ckpt = Path(args["checkpoint_path"])
    message = "training diverged at step 6: loss term 'score_matching' is"
    assert message in err and f"the last good checkpoint (step 4) is kept in {ckpt}; no model is written" in err, err
    assert "Traceback" not in err  # one clear line, not a trace from inside JAX
    assert checkpoint.read_header(ckpt)["step"] == 4
    for name in ("model_path", "spec_path", "csv_path"):
        assert not Path(args[name]).exists()


# In-process tests (float64): which checkpoints are resumed.


def _fit(tmp_path, training, caplog):
    spec = registry.model_spec("ring", PARAMS, NETWORK)
    model = registry.build_model(spec, jax.random.key(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-8, 8, (128, 1, 1)))
    g = jnp.asarray(rng.normal(size=(128, 1, 1)))
    caplog.clear()
    with caplog.at_level("INFO", logger="activeflow"):
        return score_matching.fit(model, x, g, training, 1e-3, jax.random.key(1), checkpoint_path=tmp_path / "c.ckpt")


SMALL = dict(TRAINING, steps=12, checkpoint_every=5, log_every=4)


def test_checkpoint_of_other_settings_is_ignored_with_a_message(tmp_path, caplog):
    _, full = _fit(tmp_path, SMALL, caplog)
    assert checkpoint.read_header(tmp_path / "c.ckpt")["step"] == 10  # fit leaves it; run() removes it
    _, again = _fit(tmp_path, dict(SMALL, log_every=3, checkpoint_every=4), caplog)  # bookkeeping only
    assert "resuming from checkpoint" in caplog.text and "at step 10 of 12" in caplog.text
    assert list(again.step) == [4, 8, 12]  # rows before step 10 come from the checkpoint
    np.testing.assert_array_equal(again.loss.iloc[-1], full.loss.iloc[-1])
    _fit(tmp_path, dict(SMALL, learning_rate=2e-3), caplog)
    assert "ignoring checkpoint" in caplog.text and "other training inputs" in caplog.text
    assert "resuming" not in caplog.text


def test_truncated_checkpoint_is_ignored_with_a_message(tmp_path, caplog):
    _fit(tmp_path, SMALL, caplog)
    path = tmp_path / "c.ckpt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _, history = _fit(tmp_path, SMALL, caplog)
    assert "ignoring checkpoint" in caplog.text and "truncated" in caplog.text
    assert list(history.step) == [4, 8, 12]
    path.write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="not an activeflow checkpoint"):
        checkpoint.read_header(path)


def test_stop_requests_remember_sigterm_and_sigint_and_restore_the_handlers():
    from activeflow.training.trainer import StopRequests

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for sig in before:
        with StopRequests() as stop:
            assert stop.signal is None
            os.kill(os.getpid(), sig)  # handled by the next bytecode boundary of the main thread
            time.sleep(0.01)
            assert stop.signal == sig
    assert {s: signal.getsignal(s) for s in before} == before
