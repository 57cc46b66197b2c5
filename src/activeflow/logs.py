"""Logging for stage runs: timestamped lines to the rule's log file (and stderr)."""

import logging
import sys
import warnings


def to_file(path: str | None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    for noisy in ("absl", "jax._src.xla_bridge"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
