"""Accuracy figure: learned Ṡ_tot against its reference as a function of v0, one panel per system; MIPS
and the active solid (one v0, several systems) as the ratio learned / truth of each system on a log scale."""

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from activeflow.figures.style import DOUBLE, size


def accuracy_figure(accuracy: pd.DataFrame) -> Figure:
    table = accuracy[accuracy.quantity == "S_tot"]
    systems = list(dict.fromkeys(table.system))
    fig, axes = plt.subplots(1, len(systems), layout="constrained", figsize=size(DOUBLE, 0.8 / len(systems)),
                             squeeze=False)
    for ax, system in zip(axes[0], systems):
        if system in ("mips", "lattice"):
            _athermal_panel(ax, table[table.system == system], system)
            continue
        t = table[table.system == system].sort_values("v0")
        # nudge the two estimates apart so their error bars do not hide each other
        shift = 0.01 * max(float(t.v0.max() - t.v0.min()), 0.1)
        if t.exact.notna().any():
            ax.plot(t.v0, t.exact, "k--", lw=1, marker="x", label="exact (closed form)")
        if t.reference.notna().any():
            ax.errorbar(t.v0 - shift, t.reference, yerr=t.reference_se, fmt="s", mfc="none", capsize=3,
                        label="score-free ± s.e.")
        ax.errorbar(t.v0 + shift, t.learned, yerr=t.learned_se, fmt="o", ms=4, capsize=3, label="learned ± s.e.")
        if "linear_features" in t and t.linear_features.notna().any():
            ax.errorbar(t.v0 + 2 * shift, t.linear_features, yerr=t.linear_features_se, fmt="d", ms=3, capsize=2,
                        color="tab:gray", label="linear features, no training")
        trusted = t.trusted if "trusted" in t else ~t.off
        for row in t[~trusted.astype(bool)].itertuples():
            ax.annotate("not trusted" if not row.off else "off", (row.v0 + shift, row.learned),
                        textcoords="offset points", xytext=(5, 5), color="tab:red", fontsize="small")
        ax.set(xlabel="v$_0$", ylabel="Ṡ$_{tot}$", title=system)
        if len(t) == 1:
            v = float(t.v0.iloc[0])
            ax.set_xlim(v - 0.5 * max(v, 0.1), v + 0.5 * max(v, 0.1))
        ax.legend(fontsize="small")
    return fig


def _athermal_panel(ax, t: pd.DataFrame, system: str) -> None:
    truth = t.exact.where(t.exact.notna(), t.reference)
    ratio = t.learned / truth
    err = ratio * t.learned_se.fillna(0) / t.learned.abs().where(t.learned != 0)
    names = [e.removeprefix(f"{system}/").removeprefix("transfer/") for e in t.experiment]
    y = range(len(t))
    label = "learned / exact" if system == "lattice" else "learned / score-free"
    ax.errorbar(ratio, y, xerr=err.fillna(0), fmt="o", ms=4, capsize=2, label=label)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="truth")
    ax.axvspan(0.95, 1.05, color="tab:green", alpha=0.2, lw=0)
    for yi, row in zip(y, t.itertuples()):
        if not bool(row.trusted):
            ax.annotate("not trusted", (ratio.iloc[yi], yi), textcoords="offset points", xytext=(5, 3),
                        color="tab:red", fontsize="small")
    ax.set_xscale("log")
    ax.set_yticks(list(y), names, fontsize="small")
    title = "active solid (ε = 0)" if system == "lattice" else "mips (ε = 0)"
    ax.set(xlabel="Ṡ$_{tot}$ learned / μE[ΔΦ]", title=title)
    ax.legend(fontsize="small")
