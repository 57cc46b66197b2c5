"""`threads.limit`: the rule's thread count reaches XLA's CPU thread pool (and the BLAS), which works
only because importing the stages starts no JAX backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from activeflow import threads

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (ROOT / "src" / "activeflow" / "stages").glob("*.py") if p.stem != "__init__")

PROBE = """
import json, os, sys, time
from activeflow import threads
if {n} is not None:
    threads.limit({n})
import jax, jax.numpy as jnp
f = jax.jit(lambda a: jnp.tanh(a @ a).sum())
x = jnp.ones((1000, 1000))
f(x).block_until_ready()
t, c = time.perf_counter(), time.process_time()
for _ in range(10):
    f(x).block_until_ready()
print(json.dumps(dict(threads=len(os.listdir("/proc/self/task")),
                      busy=(time.process_time() - c) / (time.perf_counter() - t))))
"""


def probe(n: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(n=n)], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_every_stage_starts_no_jax_backend():
    code = ("import importlib; from jax._src import xla_bridge as xb\n"
            f"for m in {STAGES!r}: importlib.import_module('activeflow.stages.' + m)\n"
            "print(xb.backends_are_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two cores to tell one thread from many")
def test_one_thread_is_one_xla_worker():
    """XLA's pool has one worker per core by default; limit(1) leaves one, and the matmul loop keeps at
    most about one core busy (CPU time over wall time)."""
    default, one = probe(None), probe(1)
    assert one["threads"] < default["threads"], (one, default)
    assert one["busy"] < 1.3, one


def test_limit_refuses_zero():
    with pytest.raises(ValueError, match="at least 1"):
        threads.limit(0)
