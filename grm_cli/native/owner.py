"""What every owner of a llama.cpp object shares: closed explicitly, or else when it is collected.

A subclass's `close` forgets its pointer before it frees it (context.py says why) and may run twice."""

from __future__ import annotations


class NativeOwner:
    def close(self) -> None:
        raise NotImplementedError

    def __del__(self):
        try:
            self.close()
        except Exception:  # at interpreter exit the bindings may already be gone
            pass
