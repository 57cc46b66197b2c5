"""Stage `mips_summary`: the means by phase of every MIPS system in one table."""

import logging

import pandas as pd

from activeflow import io
from activeflow.errors import InputFileError

log = logging.getLogger(__name__)


def run(paths: list[str], out_path: str) -> None:
    """The per-system rows of `by_phase` in one table, training set first, then
    by N and φ."""
    rows = []
    for path in paths:
        try:
            df = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputFileError(f"{path}: unreadable summary ({err})") from None
        rows.append(df.assign(system="train" if "/train/" in str(path) else "transfer"))
    table = pd.concat(rows, ignore_index=True).sort_values(["system", "n_particles", "phi"],
                                                           key=lambda c: c.map({"train": 0, "transfer": 1})
                                                           if c.name == "system" else c)
    io.write_csv(table[["system", *[c for c in table.columns if c != "system"]]], out_path)
    log.info("wrote %s (%d systems)", out_path, len(table))
