"""The one token-budget rule at its boundary: what the preflight check lets through, every engine generates.

A record that needs exactly n_ctx - 1 or n_ctx tokens (prompt + free generation + forced score line) is
accepted before the run and then generated without a context overflow; one that needs n_ctx + 1 is refused
before any generation, with its FILE:LINE. Run on both in-process engines (the batched one is the default).
"""

from __future__ import annotations

import pytest

from grm_cli.core.prompt import load_template
from grm_cli.core.records import record_from_dict
from grm_cli.engine.base import TAIL_SLACK, ContextOverflow, GenerationRequest, budget
from grm_cli.errors import InputError
from grm_cli.scoring.job import ScoreJob
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.plan import forced_tail, sample_plan
from grm_cli.scoring.settings import ScoreSettings

N_CTX = 512


@pytest.fixture(scope="module")
def template(short_template):
    return load_template(str(short_template))


@pytest.fixture(scope="module", params=["simple", "batched"])
def engine(request, tiny_model):
    if request.param == "simple":
        from grm_cli.engine.llama import LlamaEngine

        return LlamaEngine(tiny_model, n_ctx=N_CTX)
    from grm_cli.engine.batched import BatchedLlamaEngine

    return BatchedLlamaEngine(tiny_model, n_ctx=N_CTX, n_seq_max=4)


def _record():
    return record_from_dict({"id": "b", "prompt": "Name a prime number.", "responses": ["7", "eight"]}, "edge.jsonl", 5)


def _worst_prompt_tokens(engine, template, rec, settings):
    return max(engine.count_tokens(r.messages, r.assistant_prefix) for s in sample_plan(rec, template, settings, None) for r in [c.request for c in s.calls])


def test_budget_counts_the_free_text_and_the_forced_tail(template):
    tail = forced_tail(template, 2)
    req = GenerationRequest([{"role": "user", "content": "x"}], max_tokens=100, tail=tail)
    assert budget(req) == 100 + tail.max_tokens + TAIL_SLACK
    assert budget(GenerationRequest([{"role": "user", "content": "x"}], max_tokens=100)) == 100


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_preflight_and_engine_agree_at_the_context_boundary(engine, template, over):
    rec = _record()
    probe = ScoreSettings(k=2, seed=3, max_tokens=8)
    tail_budget = budget(sample_plan(rec, template, probe, None)[0].calls[0].request) - probe.max_tokens
    # choose the free-text budget so that the most demanding sample needs exactly N_CTX + over tokens
    max_tokens = N_CTX + over - _worst_prompt_tokens(engine, template, rec, probe) - tail_budget
    settings = ScoreSettings(k=2, seed=3, max_tokens=max_tokens, temperature=0.8)
    needs = [engine.count_tokens(r.messages, r.assistant_prefix) + budget(r) for s in sample_plan(rec, template, settings, None) for r in [c.request for c in s.calls]]
    assert max(needs) == N_CTX + over
    if over > 0:
        with pytest.raises(InputError) as e:
            ScoreJob(template, settings).prepare([rec], engine)
        assert str(e.value).startswith("edge.jsonl:5:") and f"needs {N_CTX + over}" in str(e.value)
        with pytest.raises(ContextOverflow):  # and the engine refuses it by the same number
            engine.generate(sample_plan(rec, template, settings, None)[0].calls[0].request)
        return
    ready = ScoreJob(template, settings).prepare([rec], engine)
    assert len(ready) == 1
    (result,) = score_records(ready, engine, template, settings)
    assert len(result.samples) == 2 and all(s.scores is not None for s in result.samples)
