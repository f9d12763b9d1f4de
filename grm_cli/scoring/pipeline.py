"""records -> prompts -> engine samples -> parsed judgments -> votes -> results.

The Python API behind `grm score` and `grm principles`; the CLI only parses flags and renders.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Iterator, Sequence

from grm_cli.core.adaptive import swing
from grm_cli.core.prompt import Template
from grm_cli.core.records import Record
from grm_cli.core.score_line import score_spans
from grm_cli.core.voting import Verdict, guided_vote, meta_keep, to_record_order, vote
from grm_cli.engine.base import ContextOverflow, Engine, GenerationRequest
from grm_cli.errors import InputError
from grm_cli.scoring.plan import is_protocol, judge_calls, parse_sample, sample_plan
from grm_cli.scoring.principles import GivenPrinciples, PrinciplesLookup, principles_for
from grm_cli.scoring.results import SampleResult, ScoreResult, vote_input
from grm_cli.scoring.settings import ScoreSettings


def _draw(requests: Sequence[tuple[tuple[Record, GivenPrinciples | None], int, int]], engine: Engine, template,
          settings: ScoreSettings, probe=None) -> list[list[SampleResult]]:
    """Samples first..first+count-1 of each (record, principles), generated in one engine call. A sample's
    seed and response order come from its index, so drawing a record's k samples in rounds gives the same
    samples as drawing them at once. `template`: a DeepSeek-GRM template or another protocol."""
    plans = []
    flat: list[GenerationRequest] = []
    temperature = settings.effective_temperature  # of the whole run's k, not of one round's
    for (rec, principles), first, count in requests:
        part = replace(settings, k=count, first_sample=first, temperature=temperature)
        plan = sample_plan(rec, template, part, principles)
        plans.append((rec, plan))
        more = settings.adaptive is not None and first + count < settings.first_sample + settings.k  # another round may follow
        flat.extend(replace(c.request, keep_prompt=True) if more else c.request for sample in plan for c in sample.calls)
    try:
        gens = engine.generate_many(flat)  # an engine that batches takes the whole round at once
    except ContextOverflow as e:
        rec = requests[0][0][0] if len(requests) == 1 else None
        raise InputError(f"{e}: raise --ctx or lower --max-tokens", rec.source if rec else None, rec.line if rec else None) from None
    out = []
    at = 0
    for rec, plan in plans:
        layout = template.for_record(rec) if is_protocol(template) else template
        samples = []
        for sample in plan:
            mine = gens[at:at + len(sample.calls)]
            at += len(sample.calls)
            texts = [c.prompt.assistant_prefix + g.text for c, g in zip(sample.calls, mine)]
            j, scores = judge_calls(layout, texts, sample.calls, sample.order)
            expected = _expected(probe, layout, texts, sample) if probe is not None and scores is not None else None
            calls = tuple(_call_json(layout, t, c, g) for t, c, g in zip(texts, sample.calls, mine)) if len(sample.calls) > 1 else ()
            samples.append(SampleResult(sample.index, sample.seed, sample.order, j, scores, any(g.forced_tail for g in mine),
                                        sum(g.prompt_tokens for g in mine), sum(g.completion_tokens for g in mine), sum(g.seconds for g in mine),
                                        expected, calls=calls))
        out.append(samples)
    return out


def _expected(probe, layout, texts: Sequence[str], sample) -> tuple[float, ...] | None:
    """Expected scores in the record's order: each call's verdict probabilities, by its protocol's rule."""
    n = len(sample.order)
    if not is_protocol(layout):
        (text,), (call,) = texts, sample.calls
        spans = score_spans(text)
        if layout.kind == "judge" or len(spans) != n:
            return None
        return to_record_order(probe.expected(call.prompt.messages, text, spans), sample.order)
    out: list[float | None] = [None] * n
    for text, call in zip(texts, sample.calls):
        shown = call.prompt.order
        pre = len(call.prompt.assistant_prefix)
        spans = [(a + pre, b + pre) for a, b in layout.spans(text[pre:], len(shown))]
        if not spans:
            return None
        dists = probe.distributions(call.prompt.messages, text, spans, layout.candidates(len(shown)))
        for i, v in zip(shown, layout.expected(dists, len(shown))):
            out[i] = v
    return tuple(out) if all(v is not None for v in out) else None


def _call_json(layout, text: str, call, gen) -> dict:
    """One call of a multi-call sample (an absolute protocol judging one response), as the results line keeps it."""
    j = parse_sample(layout, text, len(call.prompt.order), scores_from=len(call.prompt.assistant_prefix))
    return {"shown": list(call.prompt.order), "verdict": j.verdict, "parse_error": j.error, "forced_tail": gen.forced_tail, "text": text,
            "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens}


def score_many(
    items: Sequence[tuple[Record, GivenPrinciples | None]], engine: Engine, template: Template, settings: ScoreSettings,
    meta_rm=None, probe=None, *, allowance: int | None = None,
) -> list[ScoreResult]:
    """k samples of each (record, fixed principles) pair, generated together, each sample with its own
    seeded response order, then voted per record (Eq. 14). With a meta RM (and settings.k_meta), every
    parsed sample is rated and only the k_meta best-rated are summed. With settings.adaptive, samples are
    drawn in rounds and a record stops once its vote is settled (`allowance`: most samples for these items,
    under a budget). Results in input order."""
    if (meta_rm is None) != (settings.k_meta is None):
        raise ValueError("meta-RM-guided voting needs both a meta RM and settings.k_meta")
    if (probe is None) != (settings.score_mode == "sampled") or (probe is not None and not is_protocol(template) and template.kind == "judge"):
        raise ValueError("expected scores need a score probe (engine.probe.ScoreProbe) and a template that scores responses")
    if meta_rm is not None and is_protocol(template):
        raise InputError(f'meta-RM-guided voting rates DeepSeek-GRM trajectories; protocol "{template.name}" writes none (leave out --meta-rm)')
    if settings.adaptive is None:
        drawn = _draw([(item, settings.first_sample, settings.k) for item in items], engine, template, settings, probe)
        stopped: list[str | None] = [None] * len(items)
        ratings: list[dict | None] = [None] * len(items)
    else:
        drawn, stopped, ratings = _draw_adaptive(items, engine, template, settings, meta_rm, probe, allowance)
    results = []
    for (rec, principles), samples, why, rated in zip(items, drawn, stopped, ratings):
        n = len(rec.responses)
        if meta_rm is not None:
            samples, verdict = _meta_guided(rec, samples, meta_rm, settings.k_meta, n, settings.score_mode, rated)
        else:
            verdict = vote([vote_input(x, settings.score_mode) for x in samples], n)
        results.append(ScoreResult(rec, tuple(samples), verdict, engine.name, template.name, settings, principles, why,
                                   protocol=template.name if is_protocol(template) else None))
    return results


def _draw_adaptive(items, engine, template, settings: ScoreSettings, meta_rm, probe, allowance):
    from grm_cli.scoring.rounds import RecordRounds, run_rounds

    states = [RecordRounds(item, len(item[0].responses), swing(template.for_record(item[0]) if is_protocol(template) else template, len(item[0].responses))) for item in items]
    by_item = {id(s.item): s for s in states}

    def draw(requests):
        return _draw(requests, engine, template, settings, probe)

    def rate(state, new):
        parsed = [x for x in new if x.scores is not None]
        got = dict(zip((x.index for x in parsed), meta_rm.rate(state.item[0], [(x.order, x.judgment.text) for x in parsed]))) if parsed else {}
        return [got.get(x.index) for x in new]

    run_rounds(states, draw, settings.policy, settings.k, settings.first_sample, lambda x: vote_input(x, settings.score_mode),
               rate=rate if meta_rm is not None else None, k_meta=settings.k_meta, allowance=allowance)
    states = [by_item[id(item)] for item in items]
    return [s.samples for s in states], [s.stopped_by for s in states], [s.ratings if meta_rm is not None else None for s in states]



def _meta_guided(rec: Record, samples: list[SampleResult], meta_rm, k_meta: int, n: int, score_mode: str = "sampled",
                 ratings: dict | None = None) -> tuple[list[SampleResult], Verdict]:
    """Rate the parsed samples with the meta RM (unless rated already, by index) and vote over the k_meta best-rated."""
    if ratings is None:
        parsed = [x for x in samples if x.scores is not None]
        ratings = dict(zip((x.index for x in parsed), meta_rm.rate(rec, [(x.order, x.judgment.text) for x in parsed])))
    meta = [ratings.get(x.index) for x in samples]
    verdict = guided_vote([vote_input(x, score_mode) for x in samples], meta, k_meta, n)
    keep = meta_keep([vote_input(x, score_mode) for x in samples], meta, k_meta)
    return [replace(x, meta_score=m, meta_kept=kept) for x, m, kept in zip(samples, meta, keep)], verdict


def score_record(rec: Record, engine: Engine, template: Template, settings: ScoreSettings, principles: str | GivenPrinciples | None = None) -> ScoreResult:
    """k samples of one record, voted (Eq. 14)."""
    if isinstance(principles, str):
        principles = GivenPrinciples(principles, {"from": "argument"})
    return score_many([(rec, principles)], engine, template, settings)[0]


def score_records(
    records: Iterable[Record],
    engine: Engine,
    template: Template,
    settings: ScoreSettings = ScoreSettings(),
    principles: PrinciplesLookup | None = None,
    *,
    chunk: int = 8,
    meta_rm=None,
    probe=None,
) -> Iterator[ScoreResult]:
    """Stream one result per record, in input order; `chunk` records are generated together (a batching
    engine keeps its sequences busy across them; results do not depend on the chunk size's grouping
    except through llama.cpp's arithmetic: docs/performance.md)."""
    if settings.budget is not None:
        yield from _score_with_budget(list(records), engine, template, settings, principles, chunk, meta_rm, probe)
        return
    batch: list[tuple[Record, GivenPrinciples | None]] = []
    for rec in records:
        batch.append((rec, principles_for(rec, principles, settings)))
        if len(batch) >= chunk:
            yield from score_many(batch, engine, template, settings, meta_rm, probe)
            batch = []
    if batch:
        yield from score_many(batch, engine, template, settings, meta_rm, probe)


def _score_with_budget(records: list[Record], engine, template, settings: ScoreSettings, principles, chunk: int, meta_rm, probe) -> Iterator[ScoreResult]:
    """A run's sample budget shared by its chunks in proportion to their records; what a chunk leaves
    unspent goes to the chunks after it. Results still stream chunk by chunk (and resume as usual)."""
    left = settings.budget
    for start in range(0, len(records), chunk):
        batch = [(rec, principles_for(rec, principles, settings)) for rec in records[start:start + chunk]]
        share = left * len(batch) // (len(records) - start)
        results = score_many(batch, engine, template, settings, meta_rm, probe, allowance=share)
        left -= sum(len(r.samples) for r in results)
        left = max(0, left)
        yield from results
