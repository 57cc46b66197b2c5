"""CF-1.11 metadata for every NetCDF file: the global attributes, the per-variable rules and the
compression, in one place; `problems` is the checker used when writing and by the tests.

The systems are simulated in reduced units, which UDUNITS cannot name. A dimensional quantity has
`units` built from `length_unit` and `time_unit` (e.g. "length_unit time_unit-1" for a velocity in x),
and every file defines the two in its `reduced_units` attribute; "1" marks a dimensionless quantity.
Writing "1" everywhere would hide the dimensions, and SI units would be false.
"""

import re
import shlex
import sys
from typing import Any

import numpy as np
import xarray as xr

CONVENTIONS = "CF-1.11"
REFERENCES = ("N. M. Boffi and E. Vanden-Eijnden, Deep learning probability flows and entropy production rates "
              "in active matter, arXiv:2309.12991 (2023), doi:10.48550/arXiv.2309.12991")
REDUCED_UNITS = ("length_unit: the unit of the config's lengths (particle radius a, trap, box); time_unit: the unit "
                 "of its times (dt, 1/gamma); '1': dimensionless")
SOURCE = "activeflow: simulation, learned score and entropy production rates of active particles"

# units of reduced quantities: x is a length, g is dimensionless (dg = −γg dt + √(2γ) dW)
LENGTH, TIME, ONE = "length_unit", "time_unit", "1"
RATE = "time_unit-1"  # EPR densities, divergences of v, γ
VELOCITY_X = "length_unit time_unit-1"

TITLES = {
    "simulate": "Stationary snapshots of active Ornstein-Uhlenbeck particles",
    "compute_epr": "Learned score, probability-flow velocity and entropy production rate per particle",
    "diagnose": "Invariants of the stationary Fokker-Planck equation per held-out snapshot",
    "aggregate_map": "Entropy production rate and probability flow binned over space",
    "attention_rollout": "Attention maps of the score network on one snapshot",
    "mips_fields": "Learned score in g and entropy production per particle in motility-induced phase separation",
}

_UNIT = re.compile(rf"^({LENGTH}|{TIME})(-?\d+(/\d+)?)?$")
_COMPRESSION = dict(zlib=True, complevel=4)


def attrs(long_name: str, units: str, **extra: Any) -> dict[str, Any]:
    """A variable's CF attributes."""
    return dict(long_name=long_name, units=units, **extra)


def flag_attrs(long_name: str, meanings: list[str]) -> dict[str, Any]:
    """Attributes of an integer code 0, 1, … with one word per value (CF flags, no units)."""
    return dict(long_name=long_name, flag_values=np.arange(len(meanings), dtype=np.int8),
                flag_meanings=" ".join(meanings))


def with_bounds(ds: xr.Dataset, coord: str, edges: np.ndarray) -> xr.Dataset:
    """Coordinate `coord` of cell centres gets its cells' edges as a CF bounds variable `{coord}_bounds`."""
    bounds = f"{coord}_bounds"
    ds = ds.assign_coords({bounds: ((coord, "nv"), np.stack([edges[:-1], edges[1:]], axis=-1))})
    ds[coord].attrs["bounds"] = bounds
    return ds


def global_attrs(info: dict[str, Any], version: str, created: str) -> dict[str, str]:
    stage = str(info.get("stage", "unknown"))
    split = info.get("split")
    title = TITLES.get(stage, f"activeflow stage {stage}")
    if stage == "simulate" and split:
        title += f" ({split})"
    return dict(
        Conventions=CONVENTIONS,
        title=title,
        institution="computed with activeflow",
        source=f"{SOURCE}, version {version}, stage {stage}",
        history=f"{created} written by activeflow {version}, stage {stage}: {shlex.join(sys.argv)}",
        references=REFERENCES,
        reduced_units=REDUCED_UNITS,
    )


def valid_units(units: Any) -> bool:
    if units == ONE:
        return True
    tokens = str(units).split()
    names = [_UNIT.match(t) for t in tokens]
    return bool(tokens) and all(names) and len({m.group(1) for m in names}) == len(tokens)


def problems(ds: xr.Dataset) -> list[str]:
    """What keeps `ds` from being CF-1.11 as this project writes it: missing global attributes,
    variables without `long_name` or with units outside the reduced-unit grammar, broken bounds or flags."""
    out = [f"global attribute {key!r} missing" for key in
           ("Conventions", "title", "institution", "source", "history", "references", "reduced_units")
           if not ds.attrs.get(key)]
    if ds.attrs.get("Conventions", CONVENTIONS) != CONVENTIONS:
        out.append(f"Conventions is {ds.attrs['Conventions']!r}, not {CONVENTIONS!r}")
    bounds = {str(ds[name].attrs["bounds"]) for name in ds.variables if "bounds" in ds[name].attrs}
    for name in bounds:
        if name not in ds.variables:
            out.append(f"bounds variable {name!r} missing")
    for name in ds.variables:
        a = ds[name].attrs
        if name in bounds:
            continue  # bounds inherit the attributes of their coordinate
        if not a.get("long_name"):
            out.append(f"{name}: no long_name")
        if "flag_values" in a:
            values, meanings = np.atleast_1d(a["flag_values"]), str(a.get("flag_meanings", "")).split()
            if len(values) != len(meanings):
                out.append(f"{name}: {len(values)} flag_values but {len(meanings)} flag_meanings")
            elif not np.isin(np.unique(ds[name].values), values).all():
                out.append(f"{name}: values outside flag_values {values.tolist()}")
        elif not valid_units(a.get("units")):
            out.append(f"{name}: units {a.get('units')!r} are not '1' or a product of {LENGTH} and {TIME} powers")
    return out


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """zlib compression for every numeric variable."""
    return {name: dict(_COMPRESSION) for name in ds.variables if np.issubdtype(ds[name].dtype, np.number)}
