"""Model specs (model.json) and the models they describe, for every kind of score: one place that
training, the files (`io.load_model`) and the stages share.

A spec holds the system, its parameters, the config's `network` block and the constructor arguments
(`hyperparameters`) derived from them; `build_model(spec, key)` rebuilds the skeleton (key None) or
fresh weights.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from activeflow.models.features import GatedFeatureNet, LinearFeatureScore, PairFeatures, fit_linear_features
from activeflow.models.imbalance import ImbalanceScore, SoftDiskContacts
from activeflow.models.local_transformer import LocalTransformerScore
from activeflow.models.mlp import MLPScore
from activeflow.models.score_model import ScoreModel
from activeflow.models.transformer import TransformerScore
from activeflow.physics.systems import AOUPSystem, make_system

NETWORKS: dict[str, type[eqx.Module]] = {"mlp": MLPScore, "transformer": TransformerScore,
                                         "gated_features": GatedFeatureNet}
# The MIPS score's network keys (the local transformer of s_g only).
LOCAL_NETWORK_KEYS = ("embed_dim", "n_layers", "n_heads", "mlp_width", "mlp_depth", "n_neighbours")
# What the MIPS network is fed besides the displacements: g itself, or the force imbalance (`imbalance`),
# alone or with the soft disks' contact terms.
MIPS_INPUTS = ("g", "force_imbalance", "force_imbalance_contacts")
IMBALANCE_INPUTS = ("force_imbalance", "force_imbalance_contacts")
# Systems whose s_g alone is learned by the local transformer (ε = 0 allowed): MIPS and the active solid.
LOCAL_SCORE_SYSTEMS = ("mips", "lattice")


def imbalance_width(parameters: dict[str, Any]) -> float:
    """η = √(γ/μk), the width of the law of g given x along a contact of stiffness k."""
    return (float(parameters["gamma"]) / (float(parameters["mu"]) * float(parameters["k"]))) ** 0.5


def prior_features(system: AOUPSystem, prior: dict[str, Any]) -> PairFeatures:
    """The feature map of the config's `network.prior` block."""
    return PairFeatures.for_system(system, int(prior["n_radial"]), float(prior["r_min"]), float(prior["r_max"]),
                                   forces=bool(prior["forces"]), products=bool(prior["products"]))


def make_network(kind: str, hyper: dict[str, Any], *, key: PRNGKeyArray, system: AOUPSystem | None = None,
                 prior: dict[str, Any] | None = None) -> eqx.Module:
    if kind not in NETWORKS:
        raise ValueError(f"unknown network kind {kind!r}; allowed: {sorted(NETWORKS)}")
    if kind == "gated_features":
        return GatedFeatureNet(prior_features(system, prior), **hyper, key=key)
    return NETWORKS[kind](**hyper, key=key)


def network_hyperparameters(system: AOUPSystem, network: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of the network from the config's `network` block and the system."""
    kind = network["kind"]
    if kind == "mlp":
        return dict(
            n_particles=system.n_particles,
            dim=system.dim,
            width=int(network["width"]),
            depth=int(network["depth"]),
            period=system.box if network.get("periodic", True) else None,
        )
    if kind == "gated_features":
        if not network.get("prior") or not network.get("boltzmann_shift"):
            raise ValueError("network kind 'gated_features' corrects a fitted prior: it needs network.prior and "
                             "boltzmann_shift: true")
        return dict(width=int(network["width"]), depth=int(network["depth"]))
    if kind == "transformer":
        if system.box is not None:
            raise ValueError("network kind 'transformer' has no periodic embedding yet; use it in open space (trap)")
        # No n_particles: the same weights apply to any number of particles.
        return dict(
            dim=system.dim,
            embed_dim=int(network["embed_dim"]),
            n_layers=int(network["n_layers"]),
            n_heads=int(network["n_heads"]),
            mlp_width=int(network["mlp_width"]),
            mlp_depth=int(network["mlp_depth"]),
            zero_output=bool(network.get("boltzmann_shift", False)),
        )
    raise ValueError(f"unknown network kind {kind!r}; allowed: {sorted(NETWORKS)}")


def model_spec(system_kind: str, parameters: dict[str, Any], network: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rebuild the model skeleton (written as model.json)."""
    if system_kind in LOCAL_SCORE_SYSTEMS:
        inputs = network.get("inputs", "g")
        if inputs not in MIPS_INPUTS:
            raise ValueError(f"network.inputs={inputs!r}; allowed: {list(MIPS_INPUTS)}")
        hyper = {k: int(network[k]) for k in LOCAL_NETWORK_KEYS} | dict(
            dim=2, shift=bool(network["boltzmann_shift"]), zero_output=bool(network["boltzmann_shift"])
        )
        if inputs in IMBALANCE_INPUTS:
            if not network["boltzmann_shift"]:
                raise ValueError(f"network.inputs {inputs!r} learns the correction to s_g = −g: it needs "
                                 "boltzmann_shift: true")
            hyper |= dict(shift=False, inputs=inputs, mu=float(parameters["mu"]), v0=float(parameters["v0"]),
                          eta=imbalance_width(parameters))
        if inputs == "force_imbalance_contacts":
            if system_kind != "mips":
                raise ValueError("network.inputs 'force_imbalance_contacts' needs a pair force of the distance "
                                 f"(the soft disks, system 'mips'), not {system_kind!r}")
            hyper |= dict(g_features=4, contacts={k: float(parameters[k]) for k in ("a", "k", "beta")})
        return dict(system=system_kind, parameters=parameters, network=network, hyperparameters=hyper)
    system = make_system(system_kind, parameters)
    return dict(
        system=system_kind,
        parameters=parameters,
        network=network,
        hyperparameters=network_hyperparameters(system, network),
    )


def build_model(spec: dict[str, Any], key: jax.Array | None) -> eqx.Module:
    """The model described by a spec: skeleton (key None) or fresh weights."""
    key = jax.random.key(0) if key is None else key
    if spec["system"] in LOCAL_SCORE_SYSTEMS:
        hyper = dict(spec["hyperparameters"])
        if hyper.pop("inputs", "g") in IMBALANCE_INPUTS:
            mu, v0, eta = hyper.pop("mu"), hyper.pop("v0"), hyper.pop("eta")
            contacts = hyper.pop("contacts", None)
            contacts = None if contacts is None else SoftDiskContacts(**contacts)
            return ImbalanceScore(LocalTransformerScore.build(**hyper, key=key), mu, v0, eta, contacts)
        return LocalTransformerScore.build(**hyper, key=key)
    system = make_system(spec["system"], spec["parameters"])
    prior_config = spec["network"].get("prior")
    net = make_network(spec["network"]["kind"], spec["hyperparameters"], key=key, system=system, prior=prior_config)
    prior = None
    if prior_config:  # coefficients zero here: `fit_prior` fits them, or the saved weights fill them in
        features = prior_features(system, prior_config)
        zeros = jnp.zeros(features.n_features)
        prior = LinearFeatureScore(features, zeros, zeros)
    return ScoreModel(net, system, shift=bool(spec["network"].get("boltzmann_shift", False)), prior=prior)


def fit_prior(model: ScoreModel, x, g, replica=None) -> tuple[ScoreModel, dict[str, Any]]:
    """The model with its prior's coefficients fitted in closed form on the snapshots x, g
    (`features.fit_linear_features`, ridge cross-validated over replicas); and the fit's report. The ridge
    pulls towards zero: pulling towards the Boltzmann score keeps v0 = 0 exact but, on the trap at v0 > 0,
    lowers Ṡ_tot further and scores worse on held-out snapshots (docs/results.md)."""
    if model.prior is None:
        raise ValueError("this model has no prior to fit (network.prior is not set)")
    prior, report = fit_linear_features(model.prior.features, x, g, groups=replica)
    return eqx.tree_at(lambda m: m.prior, model, prior), report
