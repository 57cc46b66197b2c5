"""Accuracy figure: learned Ṡ_tot against its reference as a function of v0, one panel per system."""

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
