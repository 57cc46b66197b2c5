"""The systems and what is known of them exactly: drifts, forces, the Boltzmann score, the linear
system's closed forms; periodic space and neighbour lists."""

from activeflow.physics.linear import exact
from activeflow.physics.mips import MIPS
from activeflow.physics.systems import AOUPSystem, Linear, Ring, Trap, make_system

__all__ = ["AOUPSystem", "Linear", "MIPS", "Ring", "Trap", "exact", "make_system"]
