"""How a scoring run samples and votes (`ScoreSettings`), and the signature that makes two runs' results
comparable (stored with every result, checked before resuming)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grm_cli.core.adaptive import DEFAULT_RISK, Policy
from grm_cli.core.adaptive import Rule as AdaptiveRule

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



def run_signature(model: str, template: str, settings: ScoreSettings, *, protocol: str | None = None) -> dict:
    """What makes two runs' results comparable: stored with every result, checked before resuming.
    The "principles" key is absent for the default mode, so files written before it existed resume."""
    sig = {
        "model": model,
        **({"protocol": protocol} if protocol is not None and protocol != "deepseek-grm" else {}),  # absent for the default: old files resume
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
