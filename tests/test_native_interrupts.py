"""Ctrl-C is never lost in a native call that calls back into Python, and never frees a llama.cpp object
twice. The real failure: a KeyboardInterrupt raised inside llama-cpp-python's log callback (a context being
created logs ~140 lines through it) was printed into the captured log and dropped by ctypes; the run went
on to the end. Interrupted between a free and forgetting the pointer, `__del__` freed it again (exit -6)."""

from __future__ import annotations

import ctypes
import signal
import sys

import llama_cpp
import pytest

from grm_cli.native import NativeModel
from grm_cli.native.context import Batch, Context
from grm_cli.native.interrupts import held_interrupts

COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _sort_in_c(on_first_call) -> None:
    """libc's qsort calling a Python comparison: a native call that calls back into Python, like llama.cpp's log."""
    calls = []

    def compare(a, b):
        calls.append(1)
        if len(calls) == 1:
            on_first_call()
        return 0

    values = (ctypes.c_int * 16)(*range(16))
    ctypes.CDLL(None).qsort(values, 16, ctypes.sizeof(ctypes.c_int), COMPARE(compare))
    assert len(calls) > 1


def test_ctypes_drops_a_ctrl_c_raised_inside_a_callback(monkeypatch):
    """The mechanism this guards against: without holding, Ctrl-C inside the callback is lost (ctypes hands
    it to sys.unraisablehook, which prints "Exception ignored") and the call returns as if nothing happened."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    _sort_in_c(lambda: signal.raise_signal(signal.SIGINT))  # no KeyboardInterrupt comes out
    assert [d.exc_type for d in dropped] == [KeyboardInterrupt]


def test_a_ctrl_c_inside_a_callback_is_held_and_raised_after_the_call():
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            _sort_in_c(lambda: signal.raise_signal(signal.SIGINT))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_held_interrupts_leave_other_handlers_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    try:
        with held_interrupts():
            signal.raise_signal(signal.SIGINT)
        assert seen == [1]  # a server's (uvicorn's) handler ran as it would have
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_llama_cpp_creates_a_context_is_raised(tiny_model):
    """The real path: a context created through `native.Context` while llama.cpp logs, Ctrl-C in its log callback."""
    model = NativeModel(tiny_model, n_ctx=512, n_gpu_layers=0, n_threads=1, kv_type="f16", flash_attn=False, use_mmap=True, use_mlock=False,
                        verbose=False, lora=None, lora_scale=1.0)
    fired = []

    @llama_cpp.llama_log_callback
    def log(level, text, user_data):
        if not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGINT)

    llama_cpp.llama_log_set(log, ctypes.c_void_p(0))
    try:
        with pytest.raises(KeyboardInterrupt):
            Context(model, n_ctx=512, n_batch=64, n_ubatch=64, n_seq_max=1, threads=(1, 1), failure="no context")
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    assert fired


def test_an_owner_forgets_its_pointer_before_freeing_it():
    """Interrupted mid-close, a second close (from __del__) must find nothing left to free."""
    batch = Batch(8)
    real_free = llama_cpp.llama_batch_free
    freed = []

    def interrupted_free(b):
        freed.append(b)
        real_free(b)
        raise KeyboardInterrupt  # as if Ctrl-C came right after the free

    llama_cpp.llama_batch_free = interrupted_free
    try:
        with pytest.raises(KeyboardInterrupt):
            batch.close()
        batch.close()  # __del__'s close: no second free
    finally:
        llama_cpp.llama_batch_free = real_free
    assert len(freed) == 1
