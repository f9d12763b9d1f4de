"""Seeds and response orders: a sample's randomness depends only on (seed, record, sample index)."""

from __future__ import annotations

import hashlib
import random


def sample_seed(base_seed: int, record_id: str, sample_index: int) -> int:
    """One independent 31-bit seed per sample; a shared seed would make every record draw alike."""
    digest = hashlib.sha256(f"{base_seed}\x00{record_id}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def response_order(n: int, seed: int, shuffle: bool = True) -> tuple[int, ...]:
    """The order the responses are shown in: order[j] is the record index shown at position j."""
    order = list(range(n))
    if shuffle and n > 1:
        random.Random(seed).shuffle(order)
    return tuple(order)
