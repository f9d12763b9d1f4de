"""A record's samples as the engine gets them (`sample_plan`), the answer line an engine forces, and the one
function that turns a sample's text into scores in the record's order (`judged_scores`).

Scoring takes a judge layout: a DeepSeek-GRM template (the default protocol, exactly as before protocols
existed) or any other `Protocol`. A sample is one call for listwise and pairwise protocols, and one call per
response for absolute ones (each response judged alone); `judge_calls` folds a sample's calls into one
judgment with scores in the record's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render
from grm_cli.core.protocols.base import Protocol
from grm_cli.core.protocols.deepseek_grm import DeepSeekGRM
from grm_cli.core.records import Record
from grm_cli.core.rules import label_of
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.core.voting import judge_to_scores, to_record_order
from grm_cli.engine.base import ForcedTail, GenerationRequest
from grm_cli.errors import InputError
from grm_cli.scoring.results import GivenPrinciples
from grm_cli.scoring.settings import ScoreSettings


def is_protocol(layout) -> bool:
    """A protocol other than the default (the default is scored through its Template)."""
    return isinstance(layout, Protocol)


# -- the answer line -----------------------------------------------------------------------------
def forced_tail(layout, n: int) -> ForcedTail:
    """The verdict as an engine forces it: every fact of its format comes from the score line
    (`core.score_line`) or the protocol's own verdict format."""
    line = layout.verdict_format(n) if is_protocol(layout) else layout.score_line(n)
    return ForcedTail(prefix=line.prefix, grammar=line.grammar(), regex=line.regex(), is_complete=line.is_complete, trim=line.trim,
                      is_closed=line.is_closed, answer=line.answer, max_tokens=line.max_tokens, opening=getattr(line, "opening", None))


def parse_sample(layout, text: str, n: int, *, scores_from: int = 0) -> Judgment:
    """Parse one call's answer. Scores come only from text[scores_from:], the model's own."""
    if is_protocol(layout):
        own = layout.parse(text[scores_from:], n)
        return own if not scores_from else Judgment(text, own.scores, own.error, own.principles, own.critique, own.criteria, own.verdict)
    grm = DeepSeekGRM(layout)
    full = grm.parse(text, n)
    if scores_from:
        own = grm.parse(text[scores_from:], n)
        return Judgment(full.text, own.scores, own.error, full.principles, full.critique, full.criteria)
    return full


def judged_scores(layout, text: str, order: Sequence[int], *, scores_from: int = 0) -> tuple[Judgment, tuple[int, ...] | None]:
    """A one-call sample's judgment and its scores in the RECORD's order (None when unparsed): what scoring
    votes, what rejective sampling keeps and what the RL reward judges, all from this one function."""
    j = parse_sample(layout, text, len(order), scores_from=scores_from)
    if j.scores is None:
        return j, None
    if not is_protocol(layout) and layout.kind == "judge":
        return j, judge_to_scores(j.scores[0], order)
    return j, to_record_order(j.scores, order)


def judge_calls(layout, texts: Sequence[str], calls: Sequence["Call"], order: Sequence[int]) -> tuple[Judgment, tuple | None]:
    """A sample's judgment from its calls' answers (pre-fills included; scores read from the model's own
    text). One call: `judged_scores`. Absolute protocols: call i judged response i alone; the sample is
    unparsed when any call is (never a 0 for that response)."""
    if len(calls) == 1:
        return judged_scores(layout, texts[0], order, scores_from=len(calls[0].prompt.assistant_prefix))
    n = len(order)
    scores: list = [None] * n
    parts = []
    error = None
    for text, call in zip(texts, calls):
        j = parse_sample(layout, text, 1, scores_from=len(call.prompt.assistant_prefix))
        parts.append(j)
        (i,) = call.prompt.order
        if j.scores is None:
            error = error or f"response {i + 1}: {j.error}"
        else:
            scores[i] = j.scores[0]
    joined = "\n\n".join(f"[response {c.prompt.order[0] + 1}]\n{t}" for t, c in zip(texts, calls))
    critique = "\n\n".join(f"[response {c.prompt.order[0] + 1}] {j.critique}" for j, c in zip(parts, calls) if j.critique) or None
    verdict = ", ".join(j.verdict if j.verdict is not None else "?" for j in parts)
    if error:
        return Judgment(joined, None, error, critique=critique, verdict=verdict), None
    return Judgment(joined, tuple(scores), None, critique=critique, verdict=verdict), tuple(scores)


@dataclass(frozen=True)
class Call:
    """One generation of a sample: the prompt showing some of the record's responses, and its request."""

    prompt: Prompt
    request: GenerationRequest


@dataclass(frozen=True)
class PlannedSample:
    index: int
    seed: int
    order: tuple[int, ...]  # order[j] = record index of the response shown at position j
    calls: tuple[Call, ...]


def sample_order(layout, n: int, seed: int, settings: ScoreSettings, rec: Record, index: int) -> tuple[int, ...]:
    """The order a sample shows the responses in: seeded per sample; a pairwise protocol alternates the two
    orders from a seeded first one, so any k >= 2 sees both."""
    if is_protocol(layout) and layout.shape == "pairwise" and settings.shuffle:
        first = sample_seed(settings.seed, rec.id, 0) & 1
        return (0, 1) if (first + index) % 2 == 0 else (1, 0)
    return response_order(n, seed, settings.shuffle)


def check_record(layout, rec: Record, settings: ScoreSettings, principles: GivenPrinciples | None) -> None:
    """What a record must have for this layout, before anything is generated (FILE:LINE errors)."""
    if is_protocol(layout):
        layout.check(rec)
        if settings.principles != "self" or settings.hint:
            what = "principles mode none" if settings.principles != "self" else "hinted sampling"
            raise InputError(f'{what}: protocol "{layout.name}" has no principles step (it belongs to the deepseek-grm protocol)', rec.source, rec.line)
        if principles is not None:
            raise InputError(f'given principles: protocol "{layout.name}" has no principles step (they belong to the deepseek-grm protocol)', rec.source, rec.line)
        return
    DeepSeekGRM(layout).check(rec)


def sample_plan(rec: Record, layout, settings: ScoreSettings, principles: GivenPrinciples | None) -> list[PlannedSample]:
    """The k samples of one record as the engine will get them. Scoring generates exactly these, and the
    preflight check measures exactly these."""
    n = len(rec.responses)
    hint = label_of(rec, "hinted sampling") if settings.hint else None
    layout = layout.for_record(rec) if is_protocol(layout) else layout
    plan = []
    for s in range(settings.first_sample, settings.first_sample + settings.k):
        seed = sample_seed(settings.seed, rec.id, s)
        order = sample_order(layout, n, seed, settings, rec, s)
        if is_protocol(layout):
            calls = []
            for c, shown in enumerate(layout.calls(order)):
                prompt = layout.render(rec, shown)
                tail = forced_tail(layout, len(shown)) if settings.force_scores else None
                call_seed = seed if c == 0 else sample_seed(settings.seed, f"{rec.id}\x00call{c}", s)
                calls.append(Call(prompt, GenerationRequest(prompt.messages, prompt.assistant_prefix, settings.max_tokens, settings.effective_temperature, call_seed, tail=tail)))
            plan.append(PlannedSample(s, seed, order, tuple(calls)))
            continue
        if principles is not None:
            prompt = render(layout, rec, order, principles=principles.text, hint_best=hint)
        else:
            prompt = render(layout, rec, order, mode=settings.principles, hint_best=hint)
        tail = forced_tail(layout, n) if settings.force_scores else None
        request = GenerationRequest(prompt.messages, prompt.assistant_prefix, settings.max_tokens, settings.effective_temperature, seed, tail=tail)
        plan.append(PlannedSample(s, seed, order, (Call(prompt, request),)))
    return plan

