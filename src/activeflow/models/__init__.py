"""Score networks: the MLP, the particle transformer, the local transformer (MIPS), `ScoreModel` (a
network plus the Boltzmann shift) and the registry that builds any of them from a model spec."""

from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.models.mlp import MLPScore
from activeflow.models.registry import build_model, model_spec
from activeflow.models.score_model import ScoreModel
from activeflow.models.transformer import TransformerScore, attention_rollout, rollout

__all__ = ["LocalTransformerScore", "MLPScore", "ScoreModel", "TransformerScore", "attention_rollout", "build_model",
           "model_spec", "rollout"]
