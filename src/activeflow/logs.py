"""Logging for stage runs: timestamped lines to the rule's log file (and stderr)."""

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

from activeflow.errors import ActiveflowError


def to_file(path: str | None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    for noisy in ("absl", "jax._src.xla_bridge"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_stage(stage: Callable[..., Any], /, **kwargs: Any) -> None:
    """Run a stage; an error caused by the input (config, files, divergence) becomes one logged line and
    exit status 1 instead of a traceback. Anything else is a bug and keeps its traceback."""
    try:
        stage(**kwargs)
    except ActiveflowError as err:
        logging.getLogger("activeflow").error("%s", err)
        raise SystemExit(1) from None
