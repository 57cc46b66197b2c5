"""Stage `lattice_summary`: the active solid's rows of every evaluated side n in one table."""

import logging

import pandas as pd

from activeflow import io
from activeflow.errors import InputFileError

log = logging.getLogger(__name__)


def run(paths: list[str], out_path: str, n_side_trained: int) -> None:
    """One row per evaluated system, by increasing n; `transfer` says whether n differs from the training's."""
    rows = []
    for path in paths:
        try:
            rows.append(pd.read_csv(path))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputFileError(f"{path}: unreadable summary ({err})") from None
    table = pd.concat(rows, ignore_index=True).sort_values("n_side")
    table.insert(0, "transfer", table["n_side"] != n_side_trained)
    io.write_csv(table, out_path)
    log.info("wrote %s (%d systems): learned Ṡ_tot / exact %s", out_path, len(table),
             ", ".join(f"n = {r.n_side}: {r.S_tot_learned:.4g} / {r.S_tot_exact:.4g}" for r in table.itertuples()))
