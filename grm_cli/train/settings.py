"""Training settings: defaults, then a YAML file (`--config train.yaml`), then command-line flags.

One flat mapping of the names below; a file may also hold `rft:` and `rl:` sections that apply to that
stage only, so one file can describe a whole SPCT run. Unknown keys and wrong types are errors that name
the file and the key, never silently ignored settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from grm_cli.errors import InputError

LINEAR_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainSettings:
    # LoRA
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = LINEAR_TARGETS
    # optimisation
    learning_rate: float = 2e-4
    steps: int = 0  # optimizer steps; 0 = run `epochs` over the data
    epochs: float = 1.0
    batch: int = 4  # examples (SFT) or completions (RL) per device per step
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    max_length: int = 2048  # prompt + completion tokens; longer examples are left out and counted
    dtype: str = "float32"  # bfloat16 on GPUs that have it
    seed: int = 0
    # checkpoints and logs
    save_steps: int = 50
    logging_steps: int = 1
    # rejective fine-tuning (the sampling stage)
    samples: int = 3  # N_RFT
    hint: bool = True
    sample_temperature: float = 0.5
    sample_max_tokens: int = 512
    mix: str | None = None  # general instruction data mixed into SFT
    mix_ratio: float = 0.0  # mixed-in examples per GRM example
    balance_positions: bool = False  # SFT on as many "best shown first" as "best shown second" trajectories
    # rule-based RL (GRPO)
    group: int = 4  # G: completions per prompt
    beta: float = 0.08  # KL penalty to the reference (the paper: 0.08 for 27B, 0.002 for 16B)
    temperature: float = 1.0  # RL sampling temperature
    max_completion: int = 512  # tokens a RL completion may take
    drop_too_easy: bool = True  # RL skips records an RFT data file marked too easy

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d


STAGE_DEFAULTS = {
    "rft": {},
    "rl": {"learning_rate": 2e-5, "batch": 4},
}


def _coerce(name: str, value, where: str):
    f = {f.name: f for f in fields(TrainSettings)}.get(name)
    if f is None:
        known = ", ".join(sorted(x.name for x in fields(TrainSettings)))
        raise InputError(f"{where}: unknown setting {name!r} (known: {known})")
    default = getattr(TrainSettings(), name)
    try:
        if name == "lora_targets":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of module names, e.g. [q_proj, v_proj]")
            return tuple(value)
        if name == "mix":
            return None if value is None else str(value)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("expected a whole number")
            return value
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError("expected a number")
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError("expected text")
            return value
    except ValueError as e:
        raise InputError(f"{where}: {name}: {value!r}: {e}") from None
    return value


def _check(s: TrainSettings, where: str) -> TrainSettings:
    positive = ("lora_rank", "batch", "grad_accum", "max_length", "save_steps", "logging_steps", "samples", "group", "max_completion", "sample_max_tokens")
    for name in positive:
        if getattr(s, name) < 1:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected 1 or more")
    for name in ("learning_rate", "epochs"):
        if not getattr(s, name) > 0:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected a positive number")
    for name in ("steps",):
        if getattr(s, name) < 0:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected 0 (run the epochs) or more")
    for name in ("beta", "mix_ratio", "lora_dropout", "warmup_ratio", "sample_temperature"):
        if not getattr(s, name) >= 0:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected 0 or more")
    if s.warmup_ratio >= 1:
        raise InputError(f"{where}: warmup_ratio: {s.warmup_ratio}: expected a share of the steps below 1")
    if not s.temperature > 0:
        raise InputError(f"{where}: temperature: {s.temperature}: expected a positive number (RL samples)")
    if s.group < 2:
        raise InputError(f"{where}: group: {s.group}: GRPO compares completions within a group: expected 2 or more")
    if s.dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(f"{where}: dtype: {s.dtype!r}: expected float32, bfloat16 or float16")
    if s.mix_ratio > 0 and not s.mix:
        raise InputError(f"{where}: mix_ratio {s.mix_ratio} needs mix (a JSONL file of general instruction data)")
    return s


def load_settings(stage: str, config: Path | None, overrides: dict) -> TrainSettings:
    """Defaults for `stage` ("rft" or "rl"), then the file's shared keys, then its stage section, then flags."""
    s = replace(TrainSettings(), **STAGE_DEFAULTS[stage])
    if config is not None:
        import yaml

        try:
            data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise InputError(f"{config}: cannot read the training config ({e.strerror})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f"line {mark.line + 1}: " if mark is not None else ""
            raise InputError(f"{config}: {at}not valid YAML ({getattr(e, 'problem', None) or e})") from None
        if not isinstance(data, dict):
            raise InputError(f"{config}: expected a mapping of settings (name: value), got {type(data).__name__}")
        shared = {k: v for k, v in data.items() if k not in ("rft", "rl")}
        section = data.get(stage) or {}
        if not isinstance(section, dict):
            raise InputError(f"{config}: {stage}: expected a mapping of settings for that stage")
        for part, where in ((shared, str(config)), (section, f"{config}: {stage}")):
            s = replace(s, **{k: _coerce(str(k), v, where) for k, v in part.items()})
    given = {k: v for k, v in overrides.items() if v is not None}
    s = replace(s, **{k: _coerce(k, v, "command line") for k, v in given.items()})
    return _check(s, str(config) if config else "settings")


__all__ = ["TrainSettings", "load_settings", "LINEAR_TARGETS"]
