"""Training settings: defaults, then a YAML file (`--config train.yaml`), then command-line flags.

TRL's way: one documented config per method (`RFTConfig`, `RLConfig`) over the shared LoRA and optimiser
settings (`TrainingConfig`); every field's help is in its metadata. A file's top-level keys are settings of
either stage (applied where the stage has them); `rft:` and `rl:` sections apply to that stage only, so one
file can describe a whole SPCT run. Unknown keys and wrong types are errors that name
the file and the key, never silently ignored settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from grm_cli.errors import InputError

LINEAR_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _field(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainingConfig:
    """What both SPCT stages share, as TRL's configs share TrainingArguments: the LoRA and the optimiser."""

    # LoRA
    lora_rank: int = _field(16, "LoRA rank r of every adapted projection.")
    lora_alpha: float = _field(32.0, "LoRA alpha: the update is scaled by alpha / rank.")
    lora_dropout: float = _field(0.0, "Dropout on the LoRA input during training.")
    lora_targets: tuple[str, ...] = _field(LINEAR_TARGETS, "Module names to adapt (default: every attention and MLP projection).")
    # optimisation
    learning_rate: float = _field(2e-4, "AdamW learning rate (RL's default is 2e-5).")
    steps: int = _field(0, "Optimizer steps; 0 runs `epochs` over the data.")
    epochs: float = _field(1.0, "Passes over the data when steps is 0.")
    batch: int = _field(4, "Examples (RFT) or completions (RL, a multiple of group) per device and step.")
    grad_accum: int = _field(1, "Gradient accumulation steps.")
    warmup: float = _field(0.0, "Share of the optimizer steps spent warming the learning rate up (below 1).")
    max_length: int = _field(2048, "Most tokens of prompt + answer; longer examples are left out and counted, never cut.")
    dtype: str = _field("float32", "Trained weights' dtype: float32, bfloat16 (GPUs that have it) or float16.")
    seed: int = _field(0, "Seed of sampling, shuffles and initialisation.")
    # checkpoints and logs
    save_steps: int = _field(50, "Steps between checkpoints (for --resume).")
    logging_steps: int = _field(1, "Steps between lines of metrics.jsonl.")

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d


@dataclass(frozen=True)
class RFTConfig(TrainingConfig):
    """Rejective fine-tuning (paper §3.2): sampling N trajectories per record, then LoRA SFT on the right ones."""

    samples: int = _field(3, "N_RFT: unhinted samples per record.")
    hint: bool = _field(True, "Hinted sampling (the best response named) for records that are not too easy.")
    temperature: float = _field(0.5, "Temperature of the sampled trajectories (the paper's voting temperature).")
    max_tokens: int = _field(512, "Budget for the principles and critique of one sampled trajectory.")
    mix: str | None = _field(None, "A JSONL of general instruction data mixed into the SFT data.")
    mix_ratio: float = _field(0.0, "Mixed-in examples per GRM example.")
    balance_positions: bool = _field(False, "SFT on as many trajectories with the best shown first as shown second.")


@dataclass(frozen=True)
class RLConfig(TrainingConfig):
    """Rule-based online RL (paper §3.3): GRPO with +1/-1 by the correctness rule, a KL penalty, no format reward."""

    learning_rate: float = _field(2e-5, "AdamW learning rate.")
    group: int = _field(4, "G: completions per prompt, whose rewards are normalised within the group.")
    beta: float = _field(0.08, "KL penalty to the reference (the paper: 0.08 for 27B, 0.002 for 16B).")
    temperature: float = _field(1.0, "Temperature of the sampled completions.")
    max_completion: int = _field(512, "Most tokens of one completion; a cut-off one is unparsed, so rewarded -1.")
    drop_too_easy: bool = _field(True, "Leave out records an RFT data file marked too easy (as the paper does).")


CONFIGS = {"rft": RFTConfig, "rl": RLConfig}
TrainSettings = TrainingConfig  # what both stages' functions accept


def _coerce(cls, name: str, value, where: str):
    f = {f.name: f for f in fields(cls)}.get(name)
    if f is None:
        known = ", ".join(sorted(x.name for x in fields(cls)))
        raise InputError(f"{where}: unknown setting {name!r} (known: {known})")
    default = getattr(cls(), name)
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


def _check(s: TrainingConfig, where: str) -> TrainingConfig:
    positive = [n for n in ("lora_rank", "batch", "grad_accum", "max_length", "save_steps", "logging_steps", "samples", "group", "max_completion", "max_tokens") if hasattr(s, n)]
    for name in positive:
        if getattr(s, name) < 1:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected 1 or more")
    for name in ("learning_rate", "epochs"):
        if not getattr(s, name) > 0:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected a positive number")
    if s.steps < 0:
        raise InputError(f"{where}: steps: {s.steps}: expected 0 (run the epochs) or more")
    for name in [n for n in ("beta", "mix_ratio", "lora_dropout", "warmup") if hasattr(s, n)]:
        if not getattr(s, name) >= 0:
            raise InputError(f"{where}: {name}: {getattr(s, name)}: expected 0 or more")
    if s.warmup >= 1:
        raise InputError(f"{where}: warmup: {s.warmup}: expected a share of the steps below 1")
    if isinstance(s, RLConfig):
        if not s.temperature > 0:
            raise InputError(f"{where}: temperature: {s.temperature}: expected a positive number (RL samples)")
        if s.group < 2:
            raise InputError(f"{where}: group: {s.group}: GRPO compares completions within a group: expected 2 or more")
    if isinstance(s, RFTConfig):
        if not s.temperature >= 0:
            raise InputError(f"{where}: temperature: {s.temperature}: expected 0 or more")
        if s.mix_ratio > 0 and not s.mix:
            raise InputError(f"{where}: mix_ratio {s.mix_ratio} needs mix (a JSONL file of general instruction data)")
    if s.dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(f"{where}: dtype: {s.dtype!r}: expected float32, bfloat16 or float16")
    return s


def load_settings(stage: str, config: Path | None, overrides: dict) -> TrainingConfig:
    """The stage's config (RFTConfig or RLConfig): its defaults, then the file's shared keys (each a setting
    of either stage; applied where the stage has it), then its stage section, then flags."""
    cls = CONFIGS[stage]
    other = CONFIGS["rl" if stage == "rft" else "rft"]
    s = cls()
    if config is not None:
        from grm_cli.yaml_file import read_yaml

        data = read_yaml(config, "training config") or {}
        if not isinstance(data, dict):
            raise InputError(f"{config}: expected a mapping of settings (name: value), got {type(data).__name__}")
        shared = {k: v for k, v in data.items() if k not in ("rft", "rl")}
        section = data.get(stage) or {}
        if not isinstance(section, dict):
            raise InputError(f"{config}: {stage}: expected a mapping of settings for that stage")
        mine = {f.name for f in fields(cls)}
        for k, v in shared.items():
            if str(k) not in mine:
                _coerce(other, str(k), v, str(config))  # the other stage's setting: checked, not applied here
        s = replace(s, **{k: _coerce(cls, str(k), v, str(config)) for k, v in shared.items() if str(k) in mine})
        s = replace(s, **{k: _coerce(cls, str(k), v, f"{config}: {stage}") for k, v in section.items()})
    given = {k: v for k, v in overrides.items() if v is not None}
    s = replace(s, **{k: _coerce(cls, k, v, "command line") for k, v in given.items()})
    return _check(s, str(config) if config else "settings")


__all__ = ["TrainingConfig", "RFTConfig", "RLConfig", "TrainSettings", "load_settings", "LINEAR_TARGETS"]
