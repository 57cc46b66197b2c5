"""activeflow: learned probability flows and entropy production rates of active particles.

Packages, from physics to pictures: `physics` (systems, forces, neighbour lists, exact closed forms),
`numerics` (integrators, sampling, divergences, flow lines), `models` (score networks and feature
priors), `training` (losses, trainer, checkpoints), `analysis` (EPR, score-free references, diagnostics,
maps, the accuracy verdict), `figures` (figures and movies), `io` (NetCDF, models, files), `stages` (one
function per workflow rule) and `config`. None of them imports Snakemake.
No import here: the Snakefile imports `activeflow.config`, which must not pay for (or need) JAX.
"""

__version__ = "0.1.0"
