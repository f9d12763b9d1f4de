"""llama.cpp's chatter: held while it loads or makes a context, handed back when a failure needs its reason."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

from grm_cli.native.interrupts import held_interrupts

PYTHON_LOGGER = "llama-cpp-python"  # the bindings' own logger (llama.cpp's C log goes to stderr)


@contextlib.contextmanager
def captured_stderr(enabled: bool = True) -> Iterator[list[str]]:
    """Hold llama.cpp's stderr chatter, from C (fd 2) and from llama-cpp-python's log callback
    (sys.stderr), and hand it back so that a failure can say what llama.cpp said. The native calls inside
    are the ones that log: Ctrl-C is held until they return (`held_interrupts`)."""
    box: list[str] = []
    with held_interrupts():
        if not enabled:
            yield box
            return
        with _held_stderr(box):
            yield box


@contextlib.contextmanager
def _held_stderr(box: list[str]) -> Iterator[None]:
    sys.stderr.flush()
    saved_fd, saved_py = os.dup(2), sys.stderr
    with tempfile.TemporaryFile() as c_log, tempfile.TemporaryFile("w+", encoding="utf-8") as py_log:
        os.dup2(c_log.fileno(), 2)
        sys.stderr = py_log
        try:
            yield
        finally:
            sys.stderr = saved_py
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            c_log.seek(0)
            py_log.seek(0)
            box.append(c_log.read().decode("utf-8", "replace") + py_log.read())


def quiet_bindings_log() -> None:
    """Silence the bindings' Python-side log (what `verbose=False` would have set at load time)."""
    logging.getLogger(PYTHON_LOGGER).setLevel(logging.ERROR)
