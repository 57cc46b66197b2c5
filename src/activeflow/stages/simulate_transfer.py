"""Stage `simulate_transfer`: fresh MIPS systems at another N or packing fraction φ (§7.3, §7.5), all
other parameters as the training set's."""

from typing import Any

from activeflow.stages import simulate_mips


def run(parameters: dict[str, Any], simulation: dict[str, Any], seed: int, samples_path: str, n_particles: int,
        phi: float) -> None:
    simulate_mips.run(parameters, simulation, seed, samples_path, n_particles=n_particles, phi=phi)
