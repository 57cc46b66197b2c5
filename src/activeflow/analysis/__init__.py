"""What is computed from a learned score and the samples: per-particle EPR and the global Ṡ_tot with
its score-free reference (`epr`, `reference`), FPE invariants (`diagnostics`), the verdict
(`accuracy`), maps, convergence, attention, MIPS fields and profiles. Import the modules themselves
(`from activeflow.analysis.epr import epr_dataset`): the light ones (accuracy, diagnostics, stats) need
no JAX."""
