"""Numerical methods on the systems: time steps and sampling, exact per-particle divergences, the
probability-flow velocity and its fields, clusters, evaluation precision."""

from activeflow.numerics.divergence import score_and_divergence
from activeflow.numerics.flow import evaluate_fields, flow_fields, velocity
from activeflow.numerics.integrators import advance
from activeflow.numerics.sampling import sample, trajectories

__all__ = ["advance", "evaluate_fields", "flow_fields", "sample", "score_and_divergence", "trajectories", "velocity"]
