"""The one figure style (`activeflow.mplstyle`) and the two widths every figure is drawn at: one column
and two columns of a two-column journal page."""

from pathlib import Path

STYLE = Path(__file__).with_name("activeflow.mplstyle")
SINGLE = 3.4  # inches (86 mm): one column
DOUBLE = 7.0  # inches (178 mm): the full page width
TALLEST = 9.0  # inches: what fits on a page with its caption


def size(width: float, aspect: float) -> tuple[float, float]:
    """(width, height) for a figure `width` wide (SINGLE or DOUBLE) whose height is `aspect` times it,
    at most TALLEST."""
    if width not in (SINGLE, DOUBLE):
        raise ValueError(f"figure width {width} in: use style.SINGLE ({SINGLE}) or style.DOUBLE ({DOUBLE})")
    return width, round(min(width * aspect, TALLEST), 2)
