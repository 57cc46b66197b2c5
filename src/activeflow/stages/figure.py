"""Stage `figure_*`: draw one figure of `figures.table` and save it as PNG and PDF; a figure drawn from
an experiment that is not trusted carries a visible mark."""

import importlib
import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from activeflow import io  # noqa: E402
from activeflow.analysis.accuracy import verdict  # noqa: E402
from activeflow.figures.style import DOUBLE, SINGLE, STYLE  # noqa: E402
from activeflow.figures.table import BY_NAME  # noqa: E402

log = logging.getLogger(__name__)

MARK = "not converged: see accuracy.csv"


def load(path: str | list[str]) -> Any:
    """NetCDF files as xarray Datasets, CSV tables as DataFrames; a list of paths as a list."""
    if isinstance(path, list | tuple):
        return [load(p) for p in path]
    return pd.read_csv(path) if str(path).endswith(".csv") else io.read_netcdf(path)


def untrusted(inputs: dict[str, Any], thresholds: dict[str, float] | None) -> list[str]:
    """'name: why' of every experiment or MIPS system behind the figure that is not trusted."""
    out = []
    summaries, diagnostics = inputs.get("trust_summaries", []), inputs.get("trust_diagnostics", [])
    for summary_path, diagnostics_path in zip(summaries, diagnostics):
        trusted, why = verdict(pd.read_csv(summary_path), pd.read_csv(diagnostics_path), thresholds)
        if not trusted:
            out.append(f"{str(summary_path).split('/')[-2]}: {why}")
    for path in inputs.get("trust_phases", []):
        row = pd.read_csv(path).iloc[0]
        if not bool(row["trusted"]):
            out.append(f"{str(path).split('/')[-2]}: {row.get('why', 'sm_identity_g off')}")
    return out


def mark(fig: Any, reasons: list[str]) -> None:
    """A red banner above the figure naming what is not trusted (one line per experiment, shortened)."""
    lines = [r if len(r) <= 70 else r[:67] + "..." for r in reasons[:4]]
    if len(reasons) > 4:
        lines.append(f"and {len(reasons) - 4} more")
    fig.text(0.5, 1.0, "\n".join([MARK.upper(), *lines]), ha="center", va="bottom", color="white", fontsize="small",
             fontweight="bold", bbox=dict(facecolor="#c0392b", edgecolor="none", pad=3))


def run(name: str, inputs: dict[str, Any], outputs: list[str], options: dict[str, Any]) -> None:
    """Draw figure `name` from the files in `inputs` and save it to every path in `outputs`."""
    if name not in BY_NAME:
        raise ValueError(f"unknown figure {name!r}; allowed: {sorted(BY_NAME)}")
    figure = BY_NAME[name]
    module, function = figure.draw.split(".")
    draw = getattr(importlib.import_module(f"activeflow.figures.{module}"), function)
    data = {arg: load(inputs[arg]) for arg, _ in figure.inputs}
    plt.style.use(STYLE)
    fig = draw(**data, **options.get("arguments", {}))
    if round(fig.get_figwidth(), 2) not in (SINGLE, DOUBLE):
        raise ValueError(f"{name} is {fig.get_figwidth():.2f} in wide; figures are one ({SINGLE} in) or two "
                         f"({DOUBLE} in) journal columns wide (activeflow.figures.style)")
    reasons = untrusted(inputs, options.get("thresholds")) if figure.trust else []
    if reasons:
        mark(fig, reasons)
        log.warning("%s drawn from results that are not trusted (%s): marked '%s'", name, "; ".join(reasons), MARK)
    for path in outputs:
        io.save_figure(fig, path, dpi=options.get("dpi", 200))  # bbox: tight, from the style
        log.info("wrote %s", path)
    plt.close(fig)
