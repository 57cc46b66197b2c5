"""Simulation: determinism, key derivation, ring samples stay on the ring."""

import json
import subprocess
import sys

import jax
import numpy as np
import xarray as xr

from activeflow.numerics import sampling
from activeflow.seeding import derive_key


def test_same_key_same_bits(ring):
    a = sampling.sample(ring, derive_key(1, "ring"), 64, 0.5, 2, 0.1, 1e-2)
    b = sampling.sample(ring, derive_key(1, "ring"), 64, 0.5, 2, 0.1, 1e-2)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["g"], b["g"])
    assert a["x"].shape == (128, 1, 1)
    np.testing.assert_array_equal(a["replica"], np.tile(np.arange(64), 2))
    assert np.all(np.abs(a["x"]) <= ring.length / 2)


def test_keys_depend_on_seed_and_names_only():
    k = derive_key(5, "ring", "simulate")
    assert np.array_equal(jax.random.key_data(k), jax.random.key_data(derive_key(5, "ring", "simulate")))
    for other in (derive_key(6, "ring", "simulate"), derive_key(5, "trap", "simulate"), derive_key(5, "ring", "train")):
        assert not np.array_equal(jax.random.key_data(k), jax.random.key_data(other))


SIMULATION = dict(  # one replica count and step count throughout: few compilations
    dt=1e-2, integrator="leimkuhler_matthews", n_replicas=16, n_heldout_replicas=16, t_burn_in=0.1, n_snapshots=2, t_between=0.1,
    trajectories=dict(n=16, duration=0.2, t_record=0.1),
)
PARAMS = dict(a=1.0, k=2.5, beta=7.5, mu=1.0, v0=0.25, gamma=0.1, eps=0.1, L=16.0)
DRIVER = """
import json, sys
from activeflow.stages import simulate
simulate.run(**json.loads(sys.argv[1]))
"""


def test_same_config_and_seed_give_identical_samples_across_processes(tmp_path):
    """Each run is a fresh process (as each Snakemake job is); the experiment's name, not its place among
    the experiments, enters its randomness."""
    runs = {"first": "ring", "again": "ring", "renamed": "ring_b"}
    procs = []
    for folder, name in runs.items():
        d = tmp_path / folder
        args = dict(system_kind="ring", parameters=PARAMS, simulation=SIMULATION, seed=3, experiment=name,
                    samples_path=str(d / "samples.nc"), heldout_path=str(d / "heldout.nc"),
                    trajectories_path=str(d / "trajectories.nc"))
        procs.append(subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(args)], stderr=subprocess.PIPE))
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    for file in ("samples.nc", "heldout.nc", "trajectories.nc"):
        first, again, renamed = (xr.load_dataset(tmp_path / folder / file) for folder in runs)
        for var in ("x", "g"):
            assert first[var].dtype == np.float32
            np.testing.assert_array_equal(first[var].values, again[var].values)  # bitwise: float32 equality
            assert not np.array_equal(first[var].values, renamed[var].values)
