"""Training: one `Trainer` (optimiser, schedule, EMA, checkpoints, NaN guard, progress) used by score
matching with the FPE residual (`score_matching.fit`) and by denoising (`denoising.fit_denoising`)."""

from activeflow.training.denoising import fit_denoising
from activeflow.training.score_matching import fit
from activeflow.training.trainer import Trainer

__all__ = ["Trainer", "fit", "fit_denoising"]
