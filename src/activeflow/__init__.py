"""activeflow: learned probability flows and entropy production rates of active particles.

Modules: systems (drift, diffusion, Boltzmann score), linear (exact Gaussian closed forms), simulate,
networks, transformer (particle transformer, attention rollout), losses, train, checkpoint, flow (v and
exact per-particle divergences), epr, reference (score-free Ṡ_tot), diagnostics, maps, accuracy,
figures, io, config. None of them imports Snakemake.
No import here: the Snakefile imports `activeflow.config`, which must not pay for (or need) JAX.
"""

__version__ = "0.1.0"
