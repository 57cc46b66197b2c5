"""activeflow: learned probability flows and entropy production rates of active particles."""

# Scores and divergences are differences of large terms at small ε: inputs stay float32, users may opt
# into float64 with JAX_ENABLE_X64. No import here: the Snakefile imports `activeflow.config` and must
# not pay for (or need) JAX.
