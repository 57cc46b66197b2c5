"""The runtime type checker of the test session (see conftest.py): beartype with PEP 484's numeric
tower, so that an int is a valid float and a float a valid complex, as the annotations mean."""

from beartype import BeartypeConf, beartype

checker = beartype(conf=BeartypeConf(is_pep484_tower=True))
