"""What scoring produces: one sample's parsed judgment (`SampleResult`) and one record's voted result
(`ScoreResult`), with the results line they write."""

from __future__ import annotations

from dataclasses import dataclass, field

from grm_cli.core.judgment import Judgment
from grm_cli.core.records import Record, label_key
from grm_cli.core.rules import is_correct, single_response_correct
from grm_cli.core.voting import Verdict
from grm_cli.errors import InputError
from grm_cli.scoring.settings import ScoreSettings, run_signature


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
    calls: tuple[dict, ...] = ()  # an absolute protocol's calls (one per response judged alone), as written

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
            **({"verdict": j.verdict} if j.verdict is not None else {}),
            **({"calls": list(self.calls)} if self.calls else {}),
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
    protocol: str | None = None  # the judge protocol, when not the default (deepseek-grm, on `template`)

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
            "run": run_signature(self.model, self.template, self.settings, protocol=self.protocol),
            "input": self.record.raw or {"prompt": self.record.query, "responses": list(self.record.responses)},
        }



def vote_input(sample: SampleResult, score_mode: str):
    """What a sample contributes to the vote: its sampled integers, or their expected values."""
    return sample.expected if score_mode == "expected" else sample.scores


# -- the results line read back ----------------------------------------------------------------------
@dataclass(frozen=True)
class StoredSample:
    scores: tuple[int, ...] | None  # record order; None = unparsed
    order: tuple[int, ...]
    forced_tail: bool | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    meta_score: float | None = None  # the meta RM's rating, when the run had one
    sampled: tuple[int, ...] | None = None  # the integers the sample wrote (record order), whatever the run voted
    text: str = ""  # the sample's whole text (the meta RM's trajectory)


@dataclass(frozen=True)
class StoredResult:
    id: str
    n: int
    preferred: int | None
    subset: str | None
    samples: tuple[StoredSample, ...]
    model: str = ""
    template: str = ""
    principles_mode: str = "self"
    oracle: bool = False
    label: int | None = None  # a single response's 0/1 label (the paper's verifiable-data variant)
    benchmark: dict | None = None  # the benchmark fields of the stored input (grm eval --benchmark), if any
    stopped_by: str | None = None  # an adaptive run's record that stopped before k: the rule (or "budget")
    input: dict | None = None  # the record as given (what was judged), when the line keeps it
    truncated: bool = False  # scored with responses cut to fit: the stored input is not what the model saw


def result_from_json(obj: dict, source: str = "<results>", line: int = 0) -> StoredResult:
    """One results line read back (the ONE reader: evaluation and the meta RM's training read through it),
    validated enough to evaluate."""
    try:
        n = int(obj["n"])
        expected = (obj.get("run") or {}).get("score_mode") == "expected"  # voted on expected values: evaluate those
        key = "expected" if expected else "scores"
        samples = tuple(
            StoredSample(
                scores=tuple(s[key]) if s.get(key) is not None else None,
                order=tuple(s.get("order") or range(n)),
                forced_tail=s.get("forced_tail"),
                prompt_tokens=int(s.get("prompt_tokens") or 0),
                completion_tokens=int(s.get("completion_tokens") or 0),
                seconds=float(s.get("seconds") or 0.0),
                meta_score=float(s["meta_score"]) if s.get("meta_score") is not None else None,
                sampled=tuple(s["scores"]) if s.get("scores") is not None else None,
                text=str(s.get("text") or ""),
            )
            for s in obj["samples"]
        )
        run = obj.get("run") or {}
        bench = (obj.get("input") or {}).get("benchmark") if isinstance(obj.get("input"), dict) else None
        res = StoredResult(
            str(obj["id"]), n, obj.get("preferred"), obj.get("subset"), samples, str(run.get("model", "")), str(run.get("template", "")),
            str(obj.get("principles_mode") or ("given" if obj.get("given_principles") else "self")), bool(obj.get("oracle")),
            obj.get("label") if n == 1 and obj.get("label") in (0, 1) else None, bench if isinstance(bench, dict) else None,
            str(obj["stopped_by"]) if obj.get("stopped_by") else None,
            obj["input"] if isinstance(obj.get("input"), dict) else None, bool(obj.get("truncated_responses")),
        )
    except (KeyError, TypeError, ValueError) as e:
        what = f'field {e.args[0]!r} is missing' if isinstance(e, KeyError) else str(e)
        raise InputError(f"not a result line of `grm score --output` ({what}); data to score and stored results cannot be mixed in one file", source, line) from None
    for s in res.samples:
        if s.scores is not None and len(s.scores) != n:
            raise InputError(f'field "samples": a sample has {len(s.scores)} scores for {n} responses', source, line)
    return res
