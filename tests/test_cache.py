"""The sample cache: proven by counting real engine calls."""

from __future__ import annotations

import json

from conftest import RecordingEngine, grm, grm_process

from grm_cli.core.prompt import load_template
from grm_cli.core.records import record_from_dict
from grm_cli.engine.cache import CachedEngine, SampleCache
from grm_cli.models.fingerprint import model_fingerprint
from grm_cli.scoring.pipeline import score_record
from grm_cli.scoring.settings import ScoreSettings


def test_raising_k_reuses_the_first_samples_and_a_rerun_generates_nothing(tiny_engine, tiny_model, tmp_path, short_template):
    counting = RecordingEngine(tiny_engine)
    engine = CachedEngine(counting, SampleCache(tmp_path / "c.sqlite"), tiny_model)
    rec = record_from_dict({"id": "a", "prompt": "2+2?", "responses": ["4", "5", "22"]})
    tmpl = load_template(str(short_template))
    four = score_record(rec, engine, tmpl, ScoreSettings(k=4, temperature=0.5, max_tokens=12))
    assert counting.calls == 4
    sixteen = score_record(rec, engine, tmpl, ScoreSettings(k=16, temperature=0.5, max_tokens=12))
    assert counting.calls == 16  # 12 new samples; the first 4 came from the cache
    assert [s.judgment.text for s in sixteen.samples[:4]] == [s.judgment.text for s in four.samples]
    score_record(rec, engine, tmpl, ScoreSettings(k=16, temperature=0.5, max_tokens=12))
    assert counting.calls == 16 and engine.hits == 4 + 16
    # Anything that changes a sample misses: another seed, temperature or budget.
    score_record(rec, engine, tmpl, ScoreSettings(k=1, temperature=0.5, max_tokens=12, seed=9))
    score_record(rec, engine, tmpl, ScoreSettings(k=1, temperature=0.7, max_tokens=12))
    score_record(rec, engine, tmpl, ScoreSettings(k=1, temperature=0.5, max_tokens=13))
    assert counting.calls == 19


def test_cache_survives_processes_and_the_model_fingerprint_tracks_the_file(tiny_model, tmp_path, short_template):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "q", "responses": ["a", "b"]}) + "\n")
    args = ["score", data, "--model", tiny_model, "--ctx", "2048", "--template", short_template, "-k", "3", "--max-tokens", "8", "--json"]
    env = {"GRM_CACHE_DIR": str(tmp_path / "cache")}
    first = grm_process(*args, env=env, timeout=120)
    second = grm_process(*args, env=env, timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert "reused 3 cached samples, generated 0" in second.stderr
    strip = lambda out: [(s["text"], s["scores"]) for s in json.loads(out)["samples"]]  # noqa: E731
    assert strip(first.stdout) == strip(second.stdout)
    nocache = grm(*args, "--no-cache", env=env)
    assert "reused" not in nocache.stderr and strip(nocache.stdout) == strip(first.stdout)
    other = tmp_path / "other.gguf"
    other.write_bytes(tiny_model.read_bytes()[:-1] + b"\x01")
    assert model_fingerprint(other) != model_fingerprint(tiny_model)
