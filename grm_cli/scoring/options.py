"""A scoring run's choices as a user makes them (the flags of `grm score`, `eval` and `serve`), checked once
here: the CLI defines the flags once (`cli.options.score_flags`) and hands them over as one `ScoreOptions`.

Every check raises `InputError` naming the flag, before any model loads. `judge()` picks what the records
are judged in: `--protocol`, else the protocol the model's alias names, else DeepSeek-GRM on `--template`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from grm_cli.core.adaptive import RULES
from grm_cli.core.protocols import DEFAULT_PROTOCOL, get_protocol
from grm_cli.core.protocols.deepseek_grm import judge_layout
from grm_cli.core.records import Record, Rubric
from grm_cli.errors import InputError
from grm_cli.scoring.settings import ScoreSettings

ON_LONG = ("error", "truncate")


def check_sampling(k: int | None = None, temperature: float | None = None, max_tokens: int | None = None) -> None:
    """Flag values llama.cpp would crash on (NaN temperature aborts the process) are refused up front."""
    if k is not None and k < 1:
        raise InputError(f"--samples {k}: expected a positive number of samples")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"--max-tokens {max_tokens}: expected a positive number")
    if temperature is not None and not (math.isfinite(temperature) and temperature >= 0):
        raise InputError(f"--temperature {temperature}: expected a finite number, 0 or more")


@dataclass(frozen=True)
class ScoreOptions:
    k: int = 1
    temperature: float | None = None
    max_tokens: int = 512
    shuffle: bool = True
    force_scores: bool = True
    seed: int = 0
    template: str = "pointwise"
    protocol: str | None = None
    rubric: Path | None = None
    reference: Path | None = None
    score_mode: str = "sampled"
    meta_rm: Path | None = None
    k_meta: int | None = None
    adaptive: str | None = None
    adaptive_risk: float = 0.01
    budget: int | None = None
    on_long: str = "error"
    skip_invalid: bool = False
    errors: Path | None = None

    def check(self, backend: str = "llama") -> None:
        """What can be checked from the flags alone."""
        check_sampling(self.k, self.temperature, self.max_tokens)
        if self.on_long not in ON_LONG:
            raise InputError(f"--on-long {self.on_long!r}: expected error or truncate")
        if self.score_mode not in ("sampled", "expected"):
            raise InputError(f"--score-mode {self.score_mode!r}: expected sampled or expected")
        if self.score_mode == "expected" and backend != "llama":
            raise InputError("--score-mode expected reads the model's probabilities in this process: use --backend llama")
        if self.adaptive is None:
            if self.budget is not None:
                raise InputError("--budget needs --adaptive exact or --adaptive stat (it hands out adaptive rounds)")
        else:
            if self.adaptive not in RULES:
                raise InputError(f"--adaptive {self.adaptive!r}: expected {' or '.join(RULES)}")
            if self.k < 2:
                raise InputError(f"--adaptive stops sampling early: give -k 2 or more (now -k {self.k})")
            if not 0.0 < self.adaptive_risk < 0.5:
                raise InputError(f"--adaptive-risk {self.adaptive_risk}: expected a probability between 0 and 0.5 (e.g. 0.01)")
            if self.budget is not None and self.budget < 1:
                raise InputError(f"--budget {self.budget}: expected a number of samples, 1 or more")
        if self.meta_rm is None and self.k_meta is not None:
            raise InputError("--k-meta needs --meta-rm (a meta RM file from `grm train metarm`, or a scalar meta RM's folder)")
        if self.meta_rm is not None:
            if self.k < 2:
                raise InputError(f"--meta-rm chooses among samples: give -k 2 or more (now -k {self.k})")
            if not 1 <= self.meta_k <= self.k:
                raise InputError(f"--k-meta {self.meta_k}: expected 1 to k ({self.k})")

    @property
    def meta_k(self) -> int | None:
        """Samples the meta RM keeps: --k-meta, or k/2 (the paper's)."""
        if self.meta_rm is None:
            return None
        return self.k_meta if self.k_meta is not None else max(1, self.k // 2)

    def protocol_name(self, model: str | None = None) -> str:
        """--protocol, else the protocol the model's alias names, else the default."""
        if self.protocol is not None:
            return self.protocol
        from grm_cli.models.registry import alias_protocol

        return alias_protocol(model) or DEFAULT_PROTOCOL

    def judge(self, model: str | None = None):
        """What the records are judged in: a DeepSeek-GRM template, or another protocol (see `plan`)."""
        name = self.protocol_name(model)
        template = self.template if (self.protocol is not None or name == DEFAULT_PROTOCOL) else None
        layout = judge_layout(get_protocol(name, template=template))
        if self.score_mode == "expected" and getattr(layout, "kind", None) == "judge":
            raise InputError(f'--score-mode expected: template "{layout.name}" names the best response instead of scoring each one')
        if self.meta_rm is not None and name != DEFAULT_PROTOCOL:
            raise InputError(f'--meta-rm rates DeepSeek-GRM trajectories; protocol "{name}" writes none (leave out --meta-rm, or use --protocol deepseek-grm)')
        return layout

    def settings(self, *, principles: str = "self", principles_from: str | None = None, meta_rm_id: str | None = None) -> ScoreSettings:
        return ScoreSettings(
            k=self.k, temperature=self.temperature, seed=self.seed, max_tokens=self.max_tokens, shuffle=self.shuffle,
            force_scores=self.force_scores, principles=principles, principles_from=principles_from, score_mode=self.score_mode,
            k_meta=self.meta_k, meta_rm=meta_rm_id, adaptive=self.adaptive, adaptive_risk=self.adaptive_risk, budget=self.budget,
        )

    def with_inputs(self, records: Sequence[Record]) -> list[Record]:
        """--rubric FILE and --reference FILE set the field on every record that lacks it."""
        rubric = read_rubric(self.rubric) if self.rubric is not None else None
        reference = read_text_file(self.reference, "--reference") if self.reference is not None else None
        if rubric is None and reference is None:
            return list(records)
        return [replace(r, rubric=r.rubric or rubric, reference=r.reference or reference) for r in records]


def read_text_file(path: Path, flag: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{flag}: cannot read the file ({getattr(e, 'strerror', None) or e})", str(path)) from None
    if not text.strip():
        raise InputError(f"{flag}: the file is empty", str(path))
    return text.strip("\n")


def read_rubric(path: Path) -> Rubric:
    """--rubric FILE: a YAML or JSON object {criteria, score1_description, ...} (or {criteria, scores}), or
    plain text (the rubric as the judge reads it)."""
    from grm_cli.core.records import rubric_from_json

    text = read_text_file(path, "--rubric")
    if Path(path).suffix.lower() in (".yaml", ".yml", ".json"):
        from grm_cli.yaml_file import read_yaml

        return rubric_from_json(read_yaml(path, "--rubric"), "rubric", str(path), 0)
    return Rubric(text)
