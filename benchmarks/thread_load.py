"""Load of a workflow run at `--cores C`: running threads (state R, from `ps -eLo stat`) once a second.

A C-core machine's thread defaults are emulated on a smaller one: every job sees NPROC (XLA's CPU pool)
and the BLAS variables set to C, which the rules' `threads:` override where they are declared. Prints
the mean number of running threads, the samples above C, the most at once, and the jobs finished.

Run: .venv/bin/python benchmarks/thread_load.py WORKDIR [--cores 8] [--seconds 1200]
                                               [--configfile config/quick.yaml]
WORKDIR is a copy of the repository at the commit to measure (`git archive COMMIT | tar -x -C WORKDIR`);
the run writes its results there and uses that copy's library.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def running_threads() -> int:
    """Threads in state R, this sampler's `ps` excluded."""
    states = subprocess.run(["ps", "-eLo", "stat="], capture_output=True, text=True, check=True).stdout.split()
    return sum(s.startswith("R") for s in states) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1200.0)
    parser.add_argument("--configfile", default="config/quick.yaml")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    cores = str(args.cores)
    env = dict(os.environ, NPROC=cores, OMP_NUM_THREADS=cores, OPENBLAS_NUM_THREADS=cores,
               MKL_NUM_THREADS=cores, PYTHONPATH=str(workdir / "src"))
    snakemake = Path(sys.executable).with_name("snakemake")
    log = open(workdir / "thread_load.log", "w")
    run = subprocess.Popen([str(snakemake), "--cores", cores, "--resources", "gpu=1", "--configfile", args.configfile],
                           cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    samples, end = [], time.monotonic() + args.seconds
    try:
        while time.monotonic() < end and run.poll() is None:
            samples.append(running_threads())
            time.sleep(1.0)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)  # Snakemake and its jobs
            run.wait()
        log.close()
    done = re.findall(r"(\d+) of (\d+) steps", (workdir / "thread_load.log").read_text())
    load = np.array(samples)
    print(f"--cores {cores}, {len(load)} samples over {args.seconds:.0f} s: mean running {load.mean():.2f}, "
          f"above {cores} in {np.sum(load > args.cores)} ({np.mean(load > args.cores):.1%}), most at once "
          f"{load.max()}; jobs finished {'/'.join(done[-1]) if done else 0}")


if __name__ == "__main__":
    main()
