"""Ctrl-C while llama.cpp calls back into Python: held until the native call returns, then raised.

llama.cpp reports through a log callback that llama-cpp-python implements in Python; loading a model or
creating a context calls it a hundred times and more. Python raises a pending KeyboardInterrupt at the next
bytecode, which may be inside that callback, and ctypes cannot pass an exception out of a callback: it
prints "Exception ignored" (into the captured log, so nobody saw it) and drops it. The run then went on to
the end, as if Ctrl-C had never been pressed (one Ctrl-C in about fifteen, under load, in the suite's test).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Within: SIGINT is recorded, not raised; on the way out it is raised as KeyboardInterrupt. Only where
    Python's own Ctrl-C handler is installed (the main thread; not where SIGINT is ignored or handled by a
    server), and nested uses hold it once."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if pressed:
            raise KeyboardInterrupt
