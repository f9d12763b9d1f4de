"""Errors that reach the user as one clear line and a meaningful exit code, never a traceback."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes, documented in docs/reference.md; scripts branch on them."""

    OK = 0
    INTERNAL = 1  # a bug in grm: please report it
    BAD_INPUT = 2  # unreadable file, malformed record, bad flag value
    MODEL = 3  # the model could not be found or loaded
    UNPARSED = 4  # finished, but some record got no parseable judgment from any sample
    IO = 5  # the environment failed a read or write (disk full, file too large, I/O error); rerun resumes
    INTERRUPTED = 130  # Ctrl-C


class GrmError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code = ExitCode.INTERNAL


class InputError(GrmError):
    """Bad user input, located as FILE:LINE when it comes from a file."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class ModelError(GrmError):
    """The model file is missing, unreadable or cannot be loaded by llama.cpp."""

    exit_code = ExitCode.MODEL


class IOFailure(GrmError):
    """The machine failed a read or write (a full disk, a file-size limit): not the user's input, not a bug."""

    exit_code = ExitCode.IO

    def __init__(self, error: OSError, path: str | None = None, what: str = "write"):
        self.path = path or getattr(error, "filename", None)
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}cannot {what}: {error.strerror or error}")
