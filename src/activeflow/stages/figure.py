"""Stage `figure_*`: draw one of the paper's figures (`figures.FIGURES`) and save it as PNG and PDF."""

import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402

from activeflow import io  # noqa: E402
from activeflow.figures import FIGURES, load  # noqa: E402

log = logging.getLogger(__name__)


def run(name: str, inputs: dict[str, str], outputs: list[str], options: dict[str, Any]) -> None:
    """Draw figure `name` from the NetCDF files in `inputs` and save it to every path in `outputs`."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; allowed: {sorted(FIGURES)}")
    draw, needs = FIGURES[name]
    data = {k: load(inputs[k]) for k in needs}
    plt.rcParams.update({"font.size": options.get("font_size", 9), "figure.dpi": 100})
    fig = draw(**data, **options.get("arguments", {}))
    for path in outputs:
        io.save_figure(fig, path, dpi=options.get("dpi", 200), bbox_inches="tight")
        log.info("wrote %s", path)
    plt.close(fig)
