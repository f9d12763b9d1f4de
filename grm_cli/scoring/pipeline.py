"""records -> prompts -> engine samples -> parsed judgments -> votes -> results.

The Python API behind `grm score` and `grm principles`; the CLI only parses flags and renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Literal, Sequence

from grm_cli.core.adaptive import DEFAULT_RISK, Policy, swing
from grm_cli.core.adaptive import Rule as AdaptiveRule
from grm_cli.core.judgment import Judgment, parse_judgment
from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record, label_key
from grm_cli.core.rules import is_correct, label_of, single_response_correct
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.core.score_line import score_spans
from grm_cli.core.voting import Verdict, guided_vote, judge_to_scores, meta_keep, to_record_order, vote
from grm_cli.engine.base import ContextOverflow, Engine, ForcedTail, GenerationRequest, budget
from grm_cli.errors import InputError

PrinciplesMode = Literal["self", "none", "given"]
ScoreMode = Literal["sampled", "expected"]
PAPER_TEMPERATURE = 0.5  # §5.1: sampling temperature for voting; k = 1 is greedy


@dataclass(frozen=True)
class ScoreSettings:
    k: int = 1
    temperature: float | None = None  # None: the paper's default (0 for k = 1, 0.5 for k > 1)
    seed: int = 0
    max_tokens: int = 512
    shuffle: bool = True
    force_scores: bool = True  # force the score line (grammar) when the model does not finish it
    principles: PrinciplesMode = "self"  # "self": the model writes them (or given ones are pre-filled); "none": the ablation
    principles_from: str | None = None  # the name of the given principles' source (a file), for the run signature
    score_mode: ScoreMode = "sampled"  # which scores are voted: the sampled integers, or their expected values
    hint: bool = False  # hinted sampling (rejective fine-tuning): the prompt names the labelled best response
    first_sample: int = 0  # sample indices (and so seeds) start here: a second round draws fresh samples
    k_meta: int | None = None  # meta-RM-guided voting: sum only the k_meta samples the meta RM rates best
    meta_rm: str | None = None  # which meta RM (its file's model fingerprint and name), for the run signature
    adaptive: AdaptiveRule | None = None  # adaptive voting (core.adaptive): stop a record once its vote is settled
    adaptive_risk: float = DEFAULT_RISK  # the statistical rule's error level
    budget: int | None = None  # adaptive voting: most samples for the whole run (closest votes get the rounds)

    def __post_init__(self) -> None:
        if self.score_mode not in ("sampled", "expected"):
            raise ValueError(f"score_mode {self.score_mode!r}: expected sampled or expected")
        if self.principles not in ("self", "none"):
            raise ValueError(f'principles {self.principles!r}: expected "self" or "none" (given principles come with the records or a lookup)')
        if self.adaptive is not None:
            self.policy  # checks the rule and the risk
        if self.budget is not None and (self.adaptive is None or self.budget < 1):
            raise ValueError("a sample budget needs adaptive voting and at least one sample")

    @property
    def policy(self) -> Policy | None:
        return Policy(self.adaptive, self.adaptive_risk) if self.adaptive is not None else None

    @property
    def samples_per_call(self) -> int:
        """Samples one record adds to an engine call: all k, or with adaptive voting one round. Records in
        flight are sized by it (`EngineOptions.chunk`), so that rounds of 2 fill the batched engine's
        sequences as k at once does (sized by k, an adaptive run drew 2 sequences at a time)."""
        return self.policy.round_size if self.policy is not None else self.k

    @property
    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.k == 1 else PAPER_TEMPERATURE


@dataclass(frozen=True)
class SampleResult:
    index: int
    seed: int
    order: tuple[int, ...]  # order[j] = record index of the response shown at position j
    judgment: Judgment
    scores: tuple[int, ...] | None  # in the RECORD's order; None when unparsed
    forced_tail: bool
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    expected: tuple[float, ...] | None = None  # expected value of each score (record order), when probed
    meta_score: float | None = None  # the meta RM's P(right), when one rated this sample
    meta_kept: bool | None = None  # whether meta-RM-guided voting summed this sample

    def to_json(self) -> dict:
        j = self.judgment
        return {
            "index": self.index,
            "seed": self.seed,
            "order": list(self.order),
            "principles": j.principles,
            "criteria": [{"text": c.text, "weight": c.weight} for c in j.criteria],
            "critique": j.critique,
            "scores_shown": list(j.scores) if j.scores is not None else None,
            "scores": list(self.scores) if self.scores is not None else None,
            "parse_error": j.error,
            "forced_tail": self.forced_tail,
            "text": j.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "expected": list(self.expected) if self.expected is not None else None,  # unrounded: eval re-votes them
            "meta_score": self.meta_score,
            "meta_kept": self.meta_kept,
        }


@dataclass(frozen=True)
class GivenPrinciples:
    """Principles written before scoring (by a user, another model, or the label filter) and where they
    came from: the provenance travels into every result scored with them."""

    text: str
    source: dict = field(default_factory=dict)  # file, model, data, filter, agreed/runs, filtered_on

    def is_oracle_for(self, rec: Record) -> bool:
        """Filtered with this very record's label: the paper's §2.2 oracle setting, not a held-out result."""
        return self.source.get("filtered_on") == label_key(rec)


@dataclass(frozen=True)
class ScoreResult:
    record: Record
    samples: tuple[SampleResult, ...]
    verdict: Verdict
    model: str
    template: str
    settings: ScoreSettings
    given_principles: GivenPrinciples | None = None
    stopped_by: str | None = None  # adaptive voting: the rule (or "budget") that stopped it before k samples

    @property
    def principles_mode(self) -> str:
        return "given" if self.given_principles is not None else self.settings.principles

    @property
    def oracle(self) -> bool:
        return self.given_principles is not None and self.given_principles.is_oracle_for(self.record)

    @property
    def correct(self) -> bool | None:
        """Eq. 10 on the voted totals (a tie is wrong); None without a label.
        A single response with a 0/1 `label`: Eq. 10 per sample (S_1 == r_1), and the vote is right when
        more than half of the parsed samples are (an even split is wrong)."""
        rec = self.record
        if len(rec.responses) == 1:
            if rec.label is None:
                return None
            return single_response_correct([vote_input(s, self.settings.score_mode) for s in self.samples], rec.label)
        if rec.preferred is None:
            return None
        if self.verdict.totals is None:
            return False
        return is_correct(self.verdict.totals, rec.preferred)

    def to_json(self) -> dict:
        v = self.verdict
        return {
            "id": self.record.id,
            "subset": self.record.subset,
            "n": len(self.record.responses),
            "preferred": self.record.preferred,
            "label": self.record.label,
            "scores": list(v.totals) if v.totals is not None else None,
            "best": v.best,
            "tie": v.is_tie,
            "tied": list(v.tied) if v.is_tie else [],
            "margin": v.margin,
            "votes": v.votes,
            "unparsed": v.unparsed,
            "correct": self.correct,
            "principles_mode": self.principles_mode,
            "given_principles": self.given_principles.text if self.given_principles else None,
            "principles_source": self.given_principles.source if self.given_principles else None,
            "oracle": self.oracle,
            "truncated_responses": list(self.record.truncated),
            "samples": [s.to_json() for s in self.samples],
            **({"samples_used": len(self.samples), "stopped_by": self.stopped_by} if self.settings.adaptive else {}),
            "run": run_signature(self.model, self.template, self.settings),
            "input": self.record.raw or {"prompt": self.record.query, "responses": list(self.record.responses)},
        }


def run_signature(model: str, template: str, settings: ScoreSettings) -> dict:
    """What makes two runs' results comparable: stored with every result, checked before resuming.
    The "principles" key is absent for the default mode, so files written before it existed resume."""
    sig = {
        "model": model,
        "template": template,
        "k": settings.k,
        "temperature": settings.effective_temperature,
        "seed": settings.seed,
        "max_tokens": settings.max_tokens,
        "shuffle": settings.shuffle,
        "force_scores": settings.force_scores,
    }
    if settings.score_mode != "sampled":
        sig["score_mode"] = settings.score_mode
    if settings.hint:
        sig["hint"] = True
    if settings.first_sample:
        sig["first_sample"] = settings.first_sample
    if settings.k_meta is not None:
        sig["meta_rm"] = settings.meta_rm
        sig["k_meta"] = settings.k_meta
    if settings.adaptive is not None:
        sig["adaptive"] = settings.adaptive
        if settings.adaptive == "stat":
            sig["adaptive_risk"] = settings.adaptive_risk
        if settings.budget is not None:
            sig["budget"] = settings.budget
    if settings.principles != "self" or settings.principles_from:
        sig["principles"] = settings.principles if settings.principles != "self" else f"given:{settings.principles_from}"
    return sig


# -- the answer line -----------------------------------------------------------------------------
def forced_tail(template: Template, n: int) -> ForcedTail:
    """The score line as an engine forces it: every fact of its format comes from `core.score_line`."""
    line = template.score_line(n)
    return ForcedTail(prefix=line.prefix, grammar=line.grammar(), regex=line.regex(), is_complete=line.is_complete, trim=line.trim,
                      is_closed=line.is_closed, answer=line.answer, max_tokens=line.max_tokens)


def parse_sample(template: Template, text: str, n: int, *, scores_from: int = 0) -> Judgment:
    """Parse one sample with the template's labels. Scores come only from text[scores_from:], the model's own."""
    line = template.score_line(n)
    count, lo, hi = line.count, line.lo, line.hi
    labels = dict(principles_label=template.principles_label, critique_label=template.critique_label, scores_label=template.scores_label)
    full = parse_judgment(text, count, lo, hi, **labels)
    if scores_from:
        own = parse_judgment(text[scores_from:], count, lo, hi, **labels)
        return Judgment(full.text, own.scores, own.error, full.principles, full.critique, full.criteria)
    return full


def judged_scores(template: Template, text: str, order: Sequence[int], *, scores_from: int = 0) -> tuple[Judgment, tuple[int, ...] | None]:
    """A sample's judgment and its scores in the RECORD's order (None when unparsed): what scoring votes,
    what rejective sampling keeps and what the RL reward judges, all from this one function."""
    j = parse_sample(template, text, len(order), scores_from=scores_from)
    if j.scores is None:
        return j, None
    if template.kind == "judge":
        return j, judge_to_scores(j.scores[0], order)
    return j, to_record_order(j.scores, order)


# -- scoring -------------------------------------------------------------------------------------
PrinciplesLookup = Callable[[Record], "GivenPrinciples | None"]


def _principles_for(rec: Record, lookup: PrinciplesLookup | None, settings: ScoreSettings | None = None) -> GivenPrinciples | None:
    """Given principles for a record: its own "principles" field, else the lookup's; none in mode "none"."""
    if settings is not None and settings.principles == "none":
        return None
    if rec.principles:
        return GivenPrinciples(rec.principles, {"from": "record"})
    return lookup(rec) if lookup else None


def sample_plan(rec: Record, template: Template, settings: ScoreSettings, principles: GivenPrinciples | None) -> list[tuple[int, tuple[int, ...], object, GenerationRequest]]:
    """The k samples of one record as the engine will get them: (seed, order shown, prompt, request).
    Scoring generates exactly these, and the preflight check measures exactly these."""
    n = len(rec.responses)
    tail = forced_tail(template, n) if settings.force_scores else None
    hint = label_of(rec, "hinted sampling") if settings.hint else None
    plan = []
    for s in range(settings.first_sample, settings.first_sample + settings.k):
        seed = sample_seed(settings.seed, rec.id, s)
        order = response_order(n, seed, settings.shuffle)
        if principles is not None:
            prompt = render(template, rec, order, principles=principles.text, hint_best=hint)
        else:
            prompt = render(template, rec, order, mode=settings.principles, hint_best=hint)
        request = GenerationRequest(prompt.messages, prompt.assistant_prefix, settings.max_tokens, settings.effective_temperature, seed, tail=tail)
        plan.append((seed, order, prompt, request))
    return plan


def _tokens_needed(rec: Record, engine: Engine, template: Template, settings: ScoreSettings, principles: GivenPrinciples | None) -> tuple[int, int]:
    """(prompt tokens, tokens needed) of the record's most demanding sample, by the engines' own rule."""
    worst = (0, 0)
    for _, _, _, request in sample_plan(rec, template, settings, principles):
        tokens = engine.count_tokens(request.messages, request.assistant_prefix)
        worst = max(worst, (tokens + budget(request), tokens))
    return worst[1], worst[0]


CUT_MARK = "\n[... {n} characters cut by grm to fit the context ...]\n"


def truncate_to_fit(rec: Record, engine: Engine, template: Template, settings: ScoreSettings, principles: GivenPrinciples | None = None) -> Record:
    """Cut the middle of the responses (longest most) until the prompt fits; the query is never cut."""
    originals = rec.responses
    current = rec
    for _ in range(8):
        tokens, needed = _tokens_needed(current, engine, template, settings, principles)
        excess = needed - engine.n_ctx
        if excess <= 0:
            return current
        chars_per_token = max(1.0, sum(map(len, current.responses)) / max(1, tokens))
        cut_total = int(excess * chars_per_token * 1.2) + 64
        lengths = [len(r) for r in originals]
        total = sum(lengths)
        already = [len(o) - _kept(c, o) for c, o in zip(current.responses, originals)]
        new, cut_idx = [], []
        for i, (orig, length) in enumerate(zip(originals, lengths)):
            cut = min(length - 40, already[i] + int(cut_total * length / max(total, 1)))
            if cut <= 0:
                new.append(orig)
                continue
            head = (length - cut) // 2
            new.append(orig[:head] + CUT_MARK.format(n=cut) + orig[length - (length - cut - head):])
            cut_idx.append(i)
        if not cut_idx or tuple(new) == current.responses:
            break
        current = replace(rec, responses=tuple(new), truncated=tuple(cut_idx))
    raise InputError(
        f"the prompt does not fit in the context ({engine.n_ctx} tokens) even with its responses cut: raise --ctx or lower --max-tokens",
        rec.source, rec.line,
    )


def _kept(cut: str, original: str) -> int:
    """How many characters of `original` a cut response still holds."""
    m = re.search(r"\n\[\.\.\. (\d+) characters cut by grm", cut)
    return len(original) - int(m.group(1)) if m else len(original)


def prepare_records(
    records: Sequence[Record],
    engine: Engine,
    template: Template,
    settings: ScoreSettings,
    lookup: PrinciplesLookup | None = None,
    *,
    on_long: str = "error",
    errors: list | None = None,
) -> list[Record]:
    """Check every record before generating anything: the template's response count, and the context.
    on_long="truncate" cuts the middle of long responses (marked in the output) instead of failing.
    With an `errors` list, bad records are collected there and left out; otherwise the first one raises."""
    ready = []
    for rec in records:
        try:
            template.check_count(rec)
            if rec.label is not None and (template.score_min, template.score_max) != (0, 1):
                raise InputError(f'field "label": a 0/1 label is judged with a 0/1 template (--template single), not "{template.name}"', rec.source, rec.line)
            principles = _principles_for(rec, lookup, settings)
            tokens, needed = _tokens_needed(rec, engine, template, settings, principles)
            if needed > engine.n_ctx:
                if on_long != "truncate":
                    raise InputError(
                        f"the prompt is {tokens} tokens; with --max-tokens {settings.max_tokens} it needs {needed}, "
                        f"but the context is {engine.n_ctx}: raise --ctx, lower --max-tokens, or pass --on-long truncate",
                        rec.source, rec.line,
                    )
                rec = truncate_to_fit(rec, engine, template, settings, principles)
        except InputError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        ready.append(rec)
    return ready


def generate_all(engine: Engine, requests: Sequence[GenerationRequest]) -> list:
    """Engines that batch (BatchedLlamaEngine, a cache over one) take every request at once."""
    many = getattr(engine, "generate_many", None)
    return many(requests) if many else [engine.generate(r) for r in requests]


def _draw(requests: Sequence[tuple[tuple[Record, GivenPrinciples | None], int, int]], engine: Engine, template: Template,
          settings: ScoreSettings, probe=None) -> list[list[SampleResult]]:
    """Samples first..first+count-1 of each (record, principles), generated in one engine call. A sample's
    seed and response order come from its index, so drawing a record's k samples in rounds gives the same
    samples as drawing them at once."""
    plans = []
    flat: list[GenerationRequest] = []
    temperature = settings.effective_temperature  # of the whole run's k, not of one round's
    for (rec, principles), first, count in requests:
        template.check_count(rec)
        part = replace(settings, k=count, first_sample=first, temperature=temperature)
        plan = sample_plan(rec, template, part, principles)
        plans.append((rec, first, [(seed, order, prompt) for seed, order, prompt, _ in plan]))
        more = settings.adaptive is not None and first + count < settings.first_sample + settings.k  # another round may follow
        flat.extend(replace(request, keep_prompt=True) if more else request for *_, request in plan)
    try:
        gens = generate_all(engine, flat)
    except ContextOverflow as e:
        rec = requests[0][0][0] if len(requests) == 1 else None
        raise InputError(f"{e}: raise --ctx or lower --max-tokens", rec.source if rec else None, rec.line if rec else None) from None
    out = []
    at = 0
    for rec, first, shown in plans:
        samples = []
        for s, (seed, order, prompt) in enumerate(shown, start=first):
            gen = gens[at]
            at += 1
            text = prompt.assistant_prefix + gen.text
            j, scores = judged_scores(template, text, order, scores_from=len(prompt.assistant_prefix))
            expected = None
            if probe is not None and scores is not None:
                spans = score_spans(text)
                if len(spans) == len(scores):
                    expected = to_record_order(probe.expected(prompt.messages, text, spans), order)
            samples.append(SampleResult(s, seed, order, j, scores, gen.forced_tail, gen.prompt_tokens, gen.completion_tokens, gen.seconds, expected))
        out.append(samples)
    return out


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
    if (probe is None) != (settings.score_mode == "sampled") or (probe is not None and template.kind == "judge"):
        raise ValueError("expected scores need a score probe (engine.probe.ScoreProbe) and a template that scores responses")
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
        results.append(ScoreResult(rec, tuple(samples), verdict, engine.name, template.name, settings, principles, why))
    return results


def _draw_adaptive(items, engine, template, settings: ScoreSettings, meta_rm, probe, allowance):
    from grm_cli.scoring.rounds import RecordRounds, run_rounds

    states = [RecordRounds(item, len(item[0].responses), swing(template, len(item[0].responses))) for item in items]
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


def vote_input(sample: SampleResult, score_mode: str):
    """What a sample contributes to the vote: its sampled integers, or their expected values."""
    return sample.expected if score_mode == "expected" else sample.scores


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
    except through llama.cpp's arithmetic, see README)."""
    if settings.budget is not None:
        yield from _score_with_budget(list(records), engine, template, settings, principles, chunk, meta_rm, probe)
        return
    batch: list[tuple[Record, GivenPrinciples | None]] = []
    for rec in records:
        batch.append((rec, _principles_for(rec, principles, settings)))
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
        batch = [(rec, _principles_for(rec, principles, settings)) for rec in records[start:start + chunk]]
        share = left * len(batch) // (len(records) - start)
        results = score_many(batch, engine, template, settings, meta_rm, probe, allowance=share)
        left -= sum(len(r.samples) for r in results)
        left = max(0, left)
        yield from results


# -- principles ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrinciplesResult:
    record: Record
    judgment: Judgment  # principles and criteria parsed; no scores asked for
    model: str
    template: str
    seed: int
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        j = self.judgment
        return {
            "id": self.record.id,
            "prompt": self.record.query,
            "principles": j.principles,
            "criteria": [{"text": c.text, "weight": c.weight} for c in j.criteria],
            "model": self.model,
            "template": self.template,
            "seed": self.seed,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
        }


def generate_principles(
    records: Iterable[Record],
    engine: Engine,
    template: Template,
    *,
    seed: int = 0,
    temperature: float = 0.0,
    max_tokens: int = 256,
) -> Iterator[PrinciplesResult]:
    """The model's principles for each query: its answer is pre-filled with the principles label and
    stopped at the critique label, so nothing beyond the principles is generated."""
    for rec in records:
        shown = rec if rec.responses else _without_responses(rec)
        p = render(template, shown)
        prefix = template.principles_label
        gen = engine.generate(
            GenerationRequest(
                p.messages,
                prefix,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=sample_seed(seed, rec.id, 0),
                stop=template.principles_stop(),
            )
        )
        text = prefix + gen.text
        j = parse_sample(template, text, max(1, len(rec.responses)), scores_from=len(text))
        yield PrinciplesResult(rec, j, engine.name, template.name, seed, gen.completion_tokens, gen.seconds)


def _without_responses(rec: Record) -> Record:
    """A query alone: show a placeholder so the template's layout still reads naturally."""
    return replace(rec, responses=("(No responses yet: state the criteria a good response must meet.)",))


_WS = re.compile(r"\s+")


def principles_lookup(entries: Sequence[dict], source: str) -> PrinciplesLookup:
    """Match saved principles to records: by id (when the entry also names a prompt, only if it is this
    record's query: ids like "1", "2" repeat across files), else by the query text, else one entry for all.

    An entry whose principles are null (the label filter kept none for that query) gives None: that record
    is scored in mode "self", and its result says so. Several entries for one query (the filter run on
    several labelled pairs of it): the one whose runs agreed with the label most often wins."""

    def given(e: dict) -> GivenPrinciples | None:
        return GivenPrinciples(e["principles"], {"file": source, **(e.get("provenance") or {})}) if e.get("principles") else None

    def norm(text: object) -> str:
        return _WS.sub(" ", str(text)).strip()

    by_id: dict[str, tuple[str | None, GivenPrinciples | None]] = {}
    by_query: dict[str, tuple[float, GivenPrinciples | None]] = {}
    for e in entries:
        g = given(e)
        if e.get("id") is not None:
            by_id[str(e["id"])] = (norm(e["prompt"]) if e.get("prompt") else None, g)
        if e.get("prompt"):
            key = norm(e["prompt"])
            rank = (e.get("agreed") or 0) / (e.get("runs") or 1) if g else -1.0
            if key not in by_query or rank > by_query[key][0]:
                by_query[key] = (rank, g)
    # One entry with neither id nor prompt (a plain-text file) applies to every record.
    only = entries[0] if len(entries) == 1 and entries[0].get("id") is None and not entries[0].get("prompt") else None

    def lookup(rec: Record) -> GivenPrinciples | None:
        key = norm(rec.query)
        if rec.id in by_id:
            prompt, g = by_id[rec.id]
            if prompt is None or prompt == key:
                return g
        if key in by_query:
            return by_query[key][1]
        if only is not None:
            return given(only)
        raise InputError(f'no principles for record id {rec.id!r} in {source} (matched by "id" and "prompt", then by "prompt")', rec.source, rec.line)

    return lookup


def principles_fingerprint(entries: Sequence[dict]) -> str:
    """Which principles a run used, for its signature: resuming with other principles is refused."""
    import hashlib
    import json as _json

    h = hashlib.sha256(_json.dumps([[e.get("id"), e.get("prompt"), e.get("principles")] for e in entries], ensure_ascii=False).encode())
    return h.hexdigest()[:12]
