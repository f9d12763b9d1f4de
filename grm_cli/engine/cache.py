"""A persistent cache of generated samples, so raising k or rerunning after a crash regenerates nothing done.

A sample is keyed by everything that decides it: the model file (a fingerprint of its bytes), the rendered
prompt (template, record and response order), the sampling settings and the sample's own seed (which
derives from the run seed, the record and the sample index). Keys never collide across settings, so a stale
hit is impossible; a changed model file simply misses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from grm_cli.engine.base import EngineBase, Generation, GenerationRequest
from grm_cli.models.fingerprint import model_fingerprint

SCHEMA = 1


def request_key(model_fp: str, req: GenerationRequest) -> str:
    payload = {
        "schema": SCHEMA,
        "model": model_fp,
        "messages": list(req.messages),
        "prefix": req.assistant_prefix,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "seed": req.seed,
        "stop": list(req.stop),
        "tail": [req.tail.prefix, req.tail.grammar, req.tail.max_tokens] if req.tail else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class SampleCache:
    """SQLite file of generations by request key (safe for several grm processes at once)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # grm serve opens the cache in the main thread and scores in a worker: one connection, one lock
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM samples WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return Generation(**json.loads(row[0]))
        except (TypeError, ValueError):
            return None  # an entry from an incompatible version: regenerate

    def put(self, key: str, gen: Generation) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO samples (key, value) VALUES (?, ?)", (key, json.dumps(asdict(gen), ensure_ascii=False)))

    def close(self) -> None:
        self._db.close()


class CachedEngine(EngineBase):
    """An Engine that answers from the cache when it can and stores what the inner engine generates."""

    def __init__(self, engine, cache: SampleCache, model_path: str | Path | None, *, fingerprint: str | None = None):
        """model_path: the GGUF whose content keys the cache; or `fingerprint` for a remote model."""
        self.inner = engine
        self.cache = cache
        self.fingerprint = fingerprint or model_fingerprint(model_path)
        self.name = engine.name
        self.n_ctx = engine.n_ctx
        self.hits = 0
        self.misses = 0

    def count_tokens(self, messages, assistant_prefix: str = "") -> int:
        return self.inner.count_tokens(messages, assistant_prefix)

    @property
    def stats(self):
        """The inner engine's: what was generated (cache hits cost nothing and are counted in `hits`)."""
        return self.inner.stats

    def generate(self, req: GenerationRequest) -> Generation:
        return self.generate_many([req])[0]

    def generate_many(self, requests) -> list[Generation]:
        """Cached samples come back as they were; the rest go to the inner engine together."""
        keys = [request_key(self.fingerprint, r) for r in requests]
        out: list[Generation | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, g in enumerate(out) if g is None]
        self.hits += len(requests) - len(todo)
        if todo:
            fresh = self.inner.generate_many([requests[i] for i in todo])
            for i, gen in zip(todo, fresh):
                self.cache.put(keys[i], gen)
                out[i] = gen
            self.misses += len(todo)
        return out  # type: ignore[return-value]
