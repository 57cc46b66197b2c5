"""The figure style: two widths, a height cap, TrueType fonts, and no figure sized by hand."""

import re
from pathlib import Path

import matplotlib
import pytest

from activeflow.figures import style

FIGURES = Path(style.__file__).parent


def test_sizes_are_one_or_two_columns_and_fit_a_page():
    assert style.size(style.SINGLE, 0.75) == (3.4, 2.55)
    assert style.size(style.DOUBLE, 5.0) == (7.0, style.TALLEST)
    with pytest.raises(ValueError, match="use style.SINGLE"):
        style.size(5.0, 1.0)


def test_the_style_embeds_truetype_and_sets_the_text_size():
    params = matplotlib.rc_params_from_file(style.STYLE, use_default_template=False)
    assert params["pdf.fonttype"] == 42 and params["ps.fonttype"] == 42
    assert params["font.size"] == 8


def test_no_figure_is_sized_by_hand():
    for path in FIGURES.glob("*.py"):
        if path.name == "movies.py":  # frames are sized in pixels for the codec, not in journal columns
            continue
        text = path.read_text()
        assert "figsize=(" not in text and not re.search(r"fontsize=\d", text), path.name  # sizes from the style
