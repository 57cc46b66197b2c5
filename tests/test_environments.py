"""Conda environments (envs/*.yaml per rule family, environment.yml for everything) against pyproject.toml,
requirements.lock and what the rule scripts import. conda itself is not needed: the files are compared,
not built."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "workflow" / "rules"
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["dependencies"]]


def all_requirements() -> list[Requirement]:
    """Runtime dependencies and every extra, without the project's references to itself."""
    extras = [Requirement(r) for group in pyproject()["optional-dependencies"].values() for r in group]
    return runtime_requirements() + [r for r in extras if canonicalize_name(r.name) != "activeflow"]


def env_pins(path: Path) -> dict[str, str]:
    """name -> version of the pip section; every entry must be an exact pin."""
    spec = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    pins = {}
    for entry in pip:
        req = Requirement(entry)
        (spec_,) = req.specifier
        assert spec_.operator == "==", f"{path.name}: {entry} is not an exact pin"
        pins[canonicalize_name(req.name)] = spec_.version
    return pins


def rule_blocks() -> dict[str, str]:
    """Rule name -> its text, for every rule in workflow/rules/*.smk."""
    blocks = {}
    for smk in sorted(RULES.glob("*.smk")):
        for m in re.finditer(r"^rule (\w+):\n((?:(?:    .*)?\n)*)", smk.read_text(), re.M):
            blocks[m.group(1)] = m.group(2)
    return blocks


def directive(block: str, name: str) -> str | None:
    m = re.search(rf"^    {name}:\n        \"([^\"]+)\"", block, re.M)
    return m.group(1) if m else None


def test_environment_files_pin_the_locked_versions():
    pins = lock()
    for path in [*ENV_FILES, ROOT / "environment.yml"]:
        spec = yaml.safe_load(path.read_text())
        assert "conda-forge" in spec["channels"], path.name
        assert "python=3.11" in spec["dependencies"], path.name  # pyproject: requires-python >= 3.11
        for name, version in env_pins(path).items():
            assert pins.get(name) == version, f"{path.name}: {name}=={version}, requirements.lock has {pins.get(name)}"


def test_locked_versions_satisfy_pyproject_and_environment_yml_has_them_all():
    pins, whole = lock(), env_pins(ROOT / "environment.yml")
    for req in all_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not pinned in requirements.lock"
        assert req.specifier.contains(pins[name]), f"requirements.lock {name}=={pins[name]} violates {req}"
        assert name in whole, f"environment.yml lacks {req.name} (pyproject.toml)"
    expected = {canonicalize_name(r.name) for r in all_requirements()} | {"jaxlib"}
    assert set(whole) == expected, set(whole) ^ expected
    # the reports extra of snakemake, as in pyproject's `snakemake[reports]`
    assert any(e.startswith("snakemake[reports]") for e in yaml.safe_load(
        (ROOT / "environment.yml").read_text())["dependencies"][-1]["pip"])


def test_every_rule_has_a_conda_env_of_its_family():
    blocks = rule_blocks()
    assert blocks, "no rules found"
    for rule, block in blocks.items():
        env = directive(block, "conda")
        assert env is not None, f"rule {rule} has no conda: directive"
        path = (RULES / env).resolve()
        assert path in [p.resolve() for p in ENV_FILES], f"rule {rule}: {env} is not one of envs/*.yaml"
        has_gpu = re.search(r"^    resources:\n(?:        .*\n)*?        gpu=1,", block, re.M) is not None
        if has_gpu:  # the rules that run JAX
            assert path.name == "jax.yaml", f"rule {rule} (gpu=1) uses {path.name}"
        if rule.startswith("figure_"):
            assert path.name == "plotting.yaml", f"rule {rule} uses {path.name}"


IMPORTS_OF = """
import importlib, json, sys, tempfile
from importlib import metadata
sys.path.insert(0, {src!r})
for module in {modules!r}:
    importlib.import_module(module)
import xarray as xr  # every rule reads or writes NetCDF: load its backend as a rule does
with tempfile.TemporaryDirectory() as tmp:
    xr.Dataset({{"a": ("i", [1.0])}}).to_netcdf(tmp + "/t.nc")
    xr.open_dataset(tmp + "/t.nc").close()
names = metadata.packages_distributions()
print(json.dumps(sorted({{d for m in list(sys.modules) for d in names.get(m.partition(".")[0], [])}})))
"""


@pytest.mark.parametrize("env", [p.name for p in ENV_FILES])
def test_rule_envs_hold_what_their_scripts_import(env):
    """Import the modules of every script run in this env (fresh interpreter) and require each
    project dependency that gets loaded, and nothing beyond the project's dependencies."""
    modules = {"activeflow.logs"}
    for rule, block in rule_blocks().items():
        if Path(directive(block, "conda")).name == env:
            script = (RULES / directive(block, "script")).read_text()
            for package, names in re.findall(r"^from (activeflow[\w.]*) import (.+)$", script, re.M):
                for name in (n.strip() for n in names.split(",")):  # a submodule, or a name of the package
                    module = f"{package}.{name}"
                    modules.add(module if (ROOT / "src" / f"{module.replace('.', '/')}.py").exists() else package)
    code = IMPORTS_OF.format(src=str(ROOT / "src"), modules=sorted(modules))
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True, timeout=300).stdout))
    project = {canonicalize_name(r.name) for r in runtime_requirements()} | {"jaxlib"}
    needed = {canonicalize_name(d) for d in loaded} & project
    pins = env_pins(ROOT / "envs" / env)
    assert needed <= set(pins), f"{env} lacks {needed - set(pins)} (imported by its rules' scripts)"
    assert set(pins) <= project, f"{env} has {set(pins) - project}, not a dependency in pyproject.toml"
    assert {"numpy", "xarray", "netcdf4"} <= needed  # the probe itself worked


def test_conda_users_are_told_about_the_cuda_build_of_jax():
    for path in [ROOT / "envs" / "jax.yaml", ROOT / "environment.yml"]:
        assert "jax[cuda12]==" in path.read_text(), path.name
