"""activeflow: learned probability flows and entropy production rates of active particles.

Modules: systems (drift, diffusion, Boltzmann score), linear (exact Gaussian closed forms), simulate,
networks, losses, train, flow (v and exact per-particle divergences), epr, reference (score-free Ṡ_tot),
diagnostics, maps, accuracy, figures, io. None of them imports Snakemake.
"""

__version__ = "0.1.0"
