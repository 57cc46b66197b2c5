"""What is computed from a learned score and the samples: per-particle EPR and the global Ṡ_tot with
its score-free reference, FPE invariants, maps, accuracy, attention, MIPS fields and profiles."""

from activeflow.analysis.epr import epr_dataset
from activeflow.analysis.reference import active_work_epr, stein_epr

__all__ = ["active_work_epr", "epr_dataset", "stein_epr"]
