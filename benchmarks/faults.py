"""Faults a cluster user meets, each on the test preset in its own copy of the workflow under WORKDIR:
the fault, what the user sees, the documented recovery, and every output compared with a clean run.

    python benchmarks/faults.py WORKDIR [--faults disk_full,sigterm,sigkill,two_runs,deleted]

- clean: the preset, uninterrupted (the reference; always run first).
- disk_full: the copy on a tmpfs of about half the size a clean run needs (needs root to mount; a write
  hook raising ENOSPC for one output otherwise); recovery: give space (remount larger), run again.
- sigterm: SIGTERM to the ring's training job between its periodic checkpoints; recovery: run again.
- sigkill: SIGKILL to Snakemake and every job (a rebooted login node); recovery: `--unlock`, then run
  again with `--rerun-incomplete`.
- two_runs: a second run in the same directory while the first is writing; recovery: wait for the first.
- deleted: a finished run with `results/ring/model.json` and `results/ring/training.csv` deleted;
  recovery: run again.

So that SIGTERM can land between checkpoints, every run here (the clean one too) trains the ring for
2000 steps with a checkpoint every 500 (the preset: 20 and 10). Outputs are compared with the clean
run's: netCDF with xarray's `identical` without the `created`, `history` and `git_revision`
attributes; CSV without the wall-clock column `seconds`; PDF without its creation date; every other file
byte for byte. Prints a Markdown table.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
COMMAND = [SNAKEMAKE, "--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml",
           "config/faults.yaml"]
OVERRIDE = """\
experiments:
  ring:
    training: {steps: 2000, checkpoint_every: 500, log_every: 100}
"""
TRAINING_LOG = "logs/ring/train_score.log"
IGNORED_ATTRS = {"created", "history", "git_revision"}
WALL_CLOCK = {"seconds"}
FAULTS = ("disk_full", "sigterm", "sigkill", "two_runs", "deleted")


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "envs", "profiles", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    (dest / "config" / "faults.yaml").write_text(OVERRIDE)
    return dest


def start(work: Path, *args: str) -> subprocess.Popen:
    # beside the folder, not in it: on the full disk Snakemake's own output must still be seen
    out = open(work.parent / f"{work.name}-snakemake-{time.monotonic_ns()}.out", "w")
    proc = subprocess.Popen([*COMMAND, *args], cwd=work, stdout=out, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    proc.output = out
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    rc = proc.wait()
    proc.output.close()
    return rc, Path(proc.output.name).read_text()


def run(work: Path, *args: str) -> tuple[int, str]:
    return finish(start(work, *args))


def wait_for(predicate, timeout: float = 900, every: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def processes(work: Path, name: bytes = b"") -> list[int]:
    """Processes working in `work` (Snakemake and its jobs) whose command line mentions `name`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            inside = Path(os.readlink(proc / "cwd")).is_relative_to(work)
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if inside and name in cmd:
            pids.append(int(proc.name))
    return pids


def error_lines(text: str) -> str:
    """What the user is told: our one-line errors, or Snakemake's own first error line."""
    lines = text.splitlines()
    ours = []
    for k, line in enumerate(lines):
        if re.search(r"could not write|training stopped by", line):
            ours.append(re.sub(r"^[\d-]+ [\d:,]+ \S+ ERROR: ", "", line.strip()))
        elif re.match(r"(LockException|IncompleteFilesException):$", line.strip()) and k + 1 < len(lines):
            ours.append(f"{line.strip()} {lines[k + 1].strip()}")
    if ours:
        return " / ".join(dict.fromkeys(ours))[:400]
    errors = [line.strip() for line in text.splitlines() if "Error" in line]
    return (errors[0] if errors else "(no error)")[:400]


def outputs(work: Path) -> dict[str, Path]:
    return {str(p.relative_to(work)): p for p in sorted((work / "results").rglob("*"))
            if p.is_file() and "checkpoints" not in p.parts}


def difference(a: Path, b: Path) -> str | None:
    """None when the two outputs are equal as described in the module's docstring, else why not."""
    if a.suffix == ".nc":
        with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
            x, y = x.load(), y.load()
        for ds in (x, y):
            ds.attrs = {k: v for k, v in ds.attrs.items() if k not in IGNORED_ATTRS}
        return None if x.identical(y) else "netCDF not identical"
    if a.suffix == ".csv":
        x, y = pd.read_csv(a), pd.read_csv(b)
        x, y = (t.drop(columns=[c for c in t.columns if c in WALL_CLOCK]) for t in (x, y))
        return None if x.equals(y) else "CSV differs"
    x, y = a.read_bytes(), b.read_bytes()
    if a.suffix == ".pdf":
        x, y = (re.sub(rb"/CreationDate \(D:[^)]*\)", b"", t) for t in (x, y))
    return None if x == y else "bytes differ"


def compare(clean: Path, work: Path) -> str:
    ref, got = outputs(clean), outputs(work)
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    differ = [f"{name} ({why})" for name in sorted(set(ref) & set(got))
              if (why := difference(ref[name], got[name]))]
    if not (missing or extra or differ):
        return f"all {len(ref)} equal"
    parts = [f"{len(ref) - len(missing) - len(differ)} of {len(ref)} equal"]
    for label, names in (("missing", missing), ("extra", extra), ("differ", differ)):
        if names:
            parts.append(f"{label}: {', '.join(names[:4])}" + (" …" if len(names) > 4 else ""))
    return "; ".join(parts)


def disk_full(clean: Path, work: Path) -> tuple[str, str]:
    need = sum(p.stat().st_size for p in clean.rglob("*") if p.is_file())
    work.mkdir(parents=True)
    size = need // 2
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(work)],
                             capture_output=True).returncode == 0
    try:
        copy_workflow(work)
        if mounted:
            rc, text = run(work)
            seen = f"exit {rc}: {error_lines(text)}"
            subprocess.run(["mount", "-o", "remount,size=4G", str(work)], check=True)
            recovery = f"tmpfs of {size / 1e6:.0f} MB (a clean run writes {need / 1e6:.0f} MB), remounted larger"
        else:
            hook = work / "hook"
            hook.mkdir()
            (hook / "sitecustomize.py").write_text(
                "import builtins, errno, os\n_open = builtins.open\n"
                "def _full(file, mode='r', *a, **k):\n"
                "    if 'w' in mode and 'epr_summary' in str(file):\n"
                "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))\n"
                "    return _open(file, mode, *a, **k)\nbuiltins.open = _full\n")
            env = dict(os.environ, PYTHONPATH=f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
            proc = subprocess.run(COMMAND, cwd=work, capture_output=True, text=True, env=env)
            seen = f"exit {proc.returncode}: {error_lines(proc.stdout + proc.stderr)}"
            recovery = "ENOSPC from a write hook (no tmpfs: not root), hook removed"
        rc, text = run(work)
        result = compare(clean, work) if rc == 0 else f"rerun failed (exit {rc}): {error_lines(text)}"
        return seen, f"{recovery}; run again: {result}"
    finally:
        if mounted:
            shutil.copytree(work, work.with_name(work.name + "-kept"), symlinks=True)
            subprocess.run(["umount", str(work)], check=False)


def sigterm(clean: Path, work: Path) -> tuple[str, str]:
    copy_workflow(work)
    proc = start(work)
    log = work / TRAINING_LOG
    if not wait_for(lambda: log.exists() and "checkpoint at step 500" in log.read_text()):
        finish(proc)
        return "the training's first checkpoint was never seen", "-"
    for pid in processes(work, b"train_score"):
        os.kill(pid, signal.SIGTERM)
    rc, text = finish(proc)
    stopped = re.search(r"training stopped by SIGTERM at step \d+ of \d+; .*", log.read_text())
    seen = f"exit {rc}; log: {stopped.group(0) if stopped else error_lines(text)}"
    rc, text = run(work)
    resumed = re.search(r"resuming from checkpoint \S+ at step \d+", log.read_text())
    result = compare(clean, work) if rc == 0 else f"rerun failed (exit {rc}): {error_lines(text)}"
    return seen, f"run again ({resumed.group(0) if resumed else 'no resume'}): {result}"


def sigkill(clean: Path, work: Path) -> tuple[str, str]:
    copy_workflow(work)
    proc = start(work)
    log = work / TRAINING_LOG
    wait_for(lambda: log.exists() and "checkpoint at step 500" in log.read_text())
    for pid in [proc.pid, *processes(work)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finish(proc)
    rc, text = run(work)
    seen = f"next run: exit {rc}: {error_lines(text)}"
    unlock, _ = run(work, "--unlock")
    rc, text = run(work, "--rerun-incomplete")
    result = compare(clean, work) if rc == 0 and unlock == 0 else f"recovery failed (exit {rc}): {error_lines(text)}"
    return seen, f"`--unlock`, then `--rerun-incomplete`: {result}"


def two_runs(clean: Path, work: Path) -> tuple[str, str]:
    copy_workflow(work)
    first = start(work)
    wait_for(lambda: (work / "results").exists() and any((work / "results").rglob("*.nc")))
    rc2, text2 = run(work)
    rc3, text3 = run(work, "--rerun-incomplete")
    rc1, text1 = finish(first)
    seen = f"second run: exit {rc2}: {error_lines(text2)}; with --rerun-incomplete: exit {rc3}: {error_lines(text3)}"
    result = compare(clean, work) if rc1 == 0 else f"first run failed (exit {rc1}): {error_lines(text1)}"
    return seen, f"wait for the first run: first run exit {rc1}, {result}"


def deleted(clean: Path, work: Path) -> tuple[str, str]:
    shutil.copytree(clean, work, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    for name in ("results/ring/model.json", "results/ring/training.csv"):
        (work / name).unlink()
    rc, text = run(work)
    rebuilt = all((work / name).exists() for name in ("results/ring/model.json", "results/ring/training.csv"))
    result = compare(clean, work) if rc == 0 else f"rerun failed (exit {rc}): {error_lines(text)}"
    return "model.json, training.csv gone", f"run again ({'rebuilt' if rebuilt else 'not rebuilt'}): {result}"


def main(workdir: Path, faults: list[str]) -> None:
    workdir.mkdir(parents=True, exist_ok=False)
    t0 = time.monotonic()
    clean = copy_workflow(workdir / "clean")
    rc, text = run(clean)
    if rc != 0:
        sys.exit(f"the clean run failed (exit {rc}):\n{text[-3000:]}")
    rows = [("none (clean run)", "-", f"{len(outputs(clean))} outputs", time.monotonic() - t0)]
    print(f"clean run: {rows[0][3]:.0f} s", flush=True)
    for fault in faults:
        t = time.monotonic()
        seen, recovered = globals()[fault](clean, workdir / fault)
        rows.append((fault, seen, recovered, time.monotonic() - t))
        print(f"{fault}: {rows[-1][3]:.0f} s", flush=True)
    print("\n| fault | what the user sees | recovery and outputs against the clean run | seconds |")
    print("|---|---|---|---|")
    for fault, seen, recovered, seconds in rows:
        print(f"| {fault} | {seen.replace('|', '/')} | {recovered.replace('|', '/')} | {seconds:.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="an empty or new folder")
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    main(args.workdir, args.faults.split(","))
