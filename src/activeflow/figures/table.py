"""The one list of figures: name, drawing function, inputs, caption and report category of each. The
figure rules, `rule all`, the report and the tests read it. Pure data, no imports of the drawing code
(the Snakefile imports it to build the DAG).

`inputs` maps the drawing function's arguments to what they are drawn from, resolved by the workflow
for the figure's `family`: ring and trap figures name files of their experiments (one per experiment
of the trap's v0 sweep), MIPS figures take the fields of their systems, the active solid's (`lattice`)
the table of each evaluated side, and the accuracy figure the table. `trust` says whether the figure shows a learned score (and so is marked when it is not trusted).
"""

from typing import NamedTuple


class Figure(NamedTuple):
    name: str  # results/figures/{name}.{png,pdf}
    draw: str  # module.function in activeflow.figures
    family: str  # ring, trap, mips, lattice, accuracy
    inputs: tuple[tuple[str, str], ...]  # (argument, file of an experiment, or "fields" for MIPS)
    caption: str  # in workflow/report/
    category: str
    subcategory: str
    trust: bool = True

    @property
    def rule(self) -> str:
        """figure_figNN for the paper's figures, figure_accuracy, figure_trap_convergence."""
        if self.name.startswith("fig"):
            return f"figure_{self.name[:5]}"
        return "figure_accuracy" if self.name == "accuracy-epr" else f"figure_{self.name.replace('-', '_')}"


RING, TRAP, MIPS = "Two particles on a ring", "Swimmers in a trap", "Motility-induced phase separation"

FIGURES = (
    Figure("fig02-ring-flow", "ring.fig02_ring_flow", "ring", (("map", "epr_map.nc"), ("trajectories", "trajectories.nc")),
           "fig02.rst", RING, "Main text"),
    Figure("fig03-ring-system-epr", "ring.fig03_ring_system_epr", "ring", (("map", "epr_map.nc"),), "fig03.rst", RING,
           "Main text"),
    Figure("fig12-force-smoothing", "ring.fig12_force_smoothing", "ring", (), "fig12.rst", RING, "Appendix F.2",
           trust=False),
    Figure("fig13-ring-decomposition", "ring.fig13_ring_decomposition", "ring",
           (("map", "epr_map.nc"), ("epr", "epr.nc")), "fig13.rst", RING, "Appendix F.2"),
    Figure("fig14-ring-pointwise", "ring.fig14_ring_pointwise", "ring", (("map", "epr_map.nc"),), "fig14.rst", RING,
           "Appendix F.2"),
    Figure("fig15-ring-diagnostics", "ring.fig15_ring_diagnostics", "ring", (("diagnostics", "diagnostics.nc"),),
           "fig15.rst", RING, "Appendix F.2"),
    Figure("fig05-trap-system-epr", "trap.fig05_trap_system_epr", "trap", (("epr", "epr.nc"), ("maps", "epr_map.nc")),
           "fig05.rst", TRAP, "Main text"),
    Figure("fig06-trap-total-epr", "trap.fig06_trap_total_epr", "trap", (("epr", "epr.nc"), ("maps", "epr_map.nc")),
           "fig06.rst", TRAP, "Main text"),
    Figure("fig07-trap-attention", "trap.fig07_trap_attention", "trap", (("attention", "attention.nc"),), "fig07.rst",
           TRAP, "Main text"),
    Figure("fig16-trap-total-epr-parts", "trap.fig16_trap_total_epr_parts", "trap",
           (("epr", "epr.nc"), ("maps", "epr_map.nc")), "fig16.rst", TRAP, "Appendix F.3"),
    Figure("fig17-trap-system-epr-parts", "trap.fig17_trap_system_epr_parts", "trap",
           (("epr", "epr.nc"), ("maps", "epr_map.nc")), "fig17.rst", TRAP, "Appendix F.3"),
    Figure("fig18-trap-diagnostics", "trap.fig18_trap_diagnostics", "trap", (("diagnostics", "diagnostics.nc"),),
           "fig18.rst", TRAP, "Appendix F.3"),
    Figure("athermal-smoothing", "lattice.athermal_smoothing", "lattice", (("epr", "epr.csv"),),
           "athermal-smoothing.rst", MIPS, "Truth at ε = 0"),
    Figure("trap-convergence", "trap.trap_convergence", "trap", (("convergence", "convergence.csv"),),
           "trap-convergence.rst", TRAP, "Convergence", trust=False),
    Figure("fig08-mips-epr", "mips.fig08_mips_epr", "mips", (("fields", "fields"),), "fig08.rst", MIPS, "Main text"),
    Figure("fig09-mips-transfer-size", "mips.fig09_mips_transfer_size", "mips", (("fields", "fields"),), "fig09.rst",
           MIPS, "Main text"),
    Figure("fig10-mips-flow-arrows", "mips.fig10_mips_flow_arrows", "mips", (("fields", "fields"),), "fig10.rst", MIPS,
           "Main text"),
    Figure("fig11-mips-packing-fraction", "mips.fig_mips_packing_fraction", "mips", (("fields", "fields"),),
           "fig11.rst", MIPS, "Main text"),
    Figure("fig19-mips-packing-fraction-si1", "mips.fig_mips_packing_fraction", "mips", (("fields", "fields"),),
           "fig19.rst", MIPS, "Appendix F.10"),
    Figure("fig20-mips-packing-fraction-si2", "mips.fig_mips_packing_fraction", "mips", (("fields", "fields"),),
           "fig20.rst", MIPS, "Appendix F.10"),
    Figure("fig21-mips-packing-fraction-si3", "mips.fig_mips_packing_fraction", "mips", (("fields", "fields"),),
           "fig21.rst", MIPS, "Appendix F.10"),
    Figure("accuracy-epr", "accuracy.accuracy_figure", "accuracy", (("accuracy", "accuracy.csv"),),
           "accuracy-epr.rst", "Accuracy", "Learned against exact and score-free EPR"),
)

BY_NAME = {f.name: f for f in FIGURES}
