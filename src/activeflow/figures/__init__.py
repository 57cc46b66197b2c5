"""The paper's figures, one drawing function each (modules ring, trap, mips, accuracy), and the table
of them that the figure rules use."""

from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import pandas as pd  # noqa: E402

from activeflow import io  # noqa: E402
from activeflow.figures import accuracy, mips, ring, trap  # noqa: E402

# name -> (drawing function, names of the NetCDF inputs it takes)
FIGURES: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "fig02-ring-flow": (ring.fig02_ring_flow, ("map", "trajectories")),
    "fig03-ring-system-epr": (ring.fig03_ring_system_epr, ("map",)),
    "fig12-force-smoothing": (ring.fig12_force_smoothing, ()),
    "fig13-ring-decomposition": (ring.fig13_ring_decomposition, ("map", "epr")),
    "fig14-ring-pointwise": (ring.fig14_ring_pointwise, ("map",)),
    "fig15-ring-diagnostics": (ring.fig15_ring_diagnostics, ("diagnostics",)),
    "accuracy-epr": (accuracy.accuracy_figure, ("accuracy",)),
    # trap: each input is a list of files, one per v0
    "fig05-trap-system-epr": (trap.fig05_trap_system_epr, ("epr", "maps")),
    "fig06-trap-total-epr": (trap.fig06_trap_total_epr, ("epr", "maps")),
    "fig07-trap-attention": (trap.fig07_trap_attention, ("attention",)),
    "fig16-trap-total-epr-parts": (trap.fig16_trap_total_epr_parts, ("epr", "maps")),
    "fig17-trap-system-epr-parts": (trap.fig17_trap_system_epr_parts, ("epr", "maps")),
    "fig18-trap-diagnostics": (trap.fig18_trap_diagnostics, ("diagnostics",)),
    # MIPS: one fields.nc per system; figs. 9, 11, 19-21 take a list of them, one per N or phi
    "fig08-mips-epr": (mips.fig08_mips_epr, ("fields",)),
    "fig09-mips-transfer-size": (mips.fig09_mips_transfer_size, ("fields",)),
    "fig10-mips-flow-arrows": (mips.fig10_mips_flow_arrows, ("fields",)),
    "fig11-mips-packing-fraction": (mips.fig_mips_packing_fraction, ("fields",)),
    "fig19-mips-packing-fraction-si1": (mips.fig_mips_packing_fraction, ("fields",)),
    "fig20-mips-packing-fraction-si2": (mips.fig_mips_packing_fraction, ("fields",)),
    "fig21-mips-packing-fraction-si3": (mips.fig_mips_packing_fraction, ("fields",)),
}


def load(path: str | list[str]) -> Any:
    """NetCDF files as xarray Datasets, CSV tables as DataFrames; a list of paths as a list."""
    if isinstance(path, list | tuple):
        return [load(p) for p in path]
    return pd.read_csv(path) if str(path).endswith(".csv") else io.read_netcdf(path)
