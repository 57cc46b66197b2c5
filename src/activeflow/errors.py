"""Errors a user can act on. Each message names the key or file at fault and what is allowed; the rule
scripts turn them into one logged line and a non-zero exit instead of a traceback (`logs.run_stage`)."""


class ActiveflowError(Exception):
    """Base of the errors caused by the input (config, files) rather than by a bug."""


class ConfigError(ActiveflowError, ValueError):
    """The config breaks the schema or a cross-key rule; the message lists every problem found."""


class InputFileError(ActiveflowError, ValueError):
    """An input file is unreadable, incomplete, or belongs to another system or configuration."""


class MissingFileError(InputFileError, FileNotFoundError):
    """An input file does not exist."""


class TrainingDiverged(ActiveflowError, RuntimeError):
    """A loss term or the gradient became non-finite."""


class Preempted(ActiveflowError, RuntimeError):
    """Training was asked to stop (SIGTERM, SIGINT) and saved its state; a rerun resumes from it."""


class OutputWriteError(ActiveflowError, OSError):
    """An output could not be written (disk full, quota, permissions); nothing was left under its name."""
