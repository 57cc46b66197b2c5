"""Means with standard errors that respect correlation between snapshots of one replica."""

import numpy as np


def mean_stderr(values: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and its standard error. With `groups` (e.g. the replica of each snapshot), the error comes
    from the spread of the group means (batch means), which stays honest when snapshots of one
    replica are correlated; with one snapshot per group it is the ordinary s.e."""
    values = np.asarray(values, dtype=np.float64)
    if groups is not None:
        _, inverse = np.unique(groups, return_inverse=True)
        counts = np.bincount(inverse)
        means = np.bincount(inverse, weights=values) / counts
        # equal-sized groups: the mean of group means is the overall mean
        values = means
    n = values.size
    if n < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))
