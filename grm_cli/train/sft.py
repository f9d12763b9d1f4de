"""Supervised fine-tuning of a LoRA adapter on accepted RFT trajectories (and optional general data).

Each example is tokenized as llama.cpp will see it when scoring: the model's chat template with the
generation prompt (`chat.ChatLayout`, the one the engine uses), then the trajectory, then the end-of-turn
token. Only the trajectory and end-of-turn tokens carry loss. Examples that do not fit `max_length` are
left out whole and counted: cutting one would teach the model to stop before its scores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from grm_cli.errors import InputError
from grm_cli.io.jsonl import json_lines, read_text_input

IGNORE = -100


@dataclass(frozen=True)
class ChatExample:
    """A prompt (chat messages) and the answer to learn. `source` says where it came from, for errors."""

    messages: tuple[dict, ...]
    completion: str
    source: str
    kind: str = "grm"  # "grm" (an RFT trajectory) | "mix" (general instruction data)
    best_shown: int | None = None  # where the labelled best response was SHOWN (0-based), when known


def _messages(value, where: str) -> tuple[dict, ...]:
    if isinstance(value, str):
        return ({"role": "user", "content": value},)
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: expected a string or a non-empty list of {{role, content}} messages")
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InputError(f"{where}[{i}]: expected a message with string fields role and content")
    return tuple({"role": m["role"], "content": m["content"]} for m in value)


def _completion(value, where: str) -> str:
    if isinstance(value, str):
        return value
    msgs = _messages(value, where)
    if len(msgs) != 1 or msgs[0]["role"] != "assistant":
        raise InputError(f"{where}: expected one assistant message")
    return msgs[0]["content"]


def _jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    """The project's one JSONL reader (located errors, bounded nesting) over a training file."""
    name, text = read_text_input(str(path))
    return json_lines(text, name)


def read_rft_examples(path: str | Path) -> list[ChatExample]:
    """The kept examples of a `grm train rft-data` file (one line per record, `examples` in prompt-completion form)."""
    path = Path(path)
    out = []
    for n, obj in _jsonl(path):
        if "examples" not in obj or "status" not in obj:
            raise InputError(f"{path}:{n}: not an RFT data line (expected the fields status and examples, as `grm train rft-data` writes)")
        for i, ex in enumerate(obj["examples"] or []):
            where = f"{path}:{n}: examples[{i}]"
            if not isinstance(ex, dict):
                raise InputError(f"{where}: expected an object with prompt and completion")
            out.append(ChatExample(_messages(ex.get("prompt"), f"{where}.prompt"), _completion(ex.get("completion"), f"{where}.completion"), f"{path}:{n}",
                                   best_shown=_best_shown(ex)))
    return out


def _best_shown(ex: dict) -> int | None:
    """A kept trajectory is right, so its top score (record order) is the label; where was it shown?"""
    scores, order = ex.get("scores"), ex.get("order")
    if not isinstance(scores, list) or not isinstance(order, list) or len(scores) < 2 or len(scores) != len(order):
        return None
    top = max(scores)
    if scores.count(top) != 1 or sorted(order) != list(range(len(order))):
        return None
    return order.index(scores.index(top))


def balance_positions(examples: Sequence[ChatExample], seed: int) -> tuple[list[ChatExample], int]:
    """Keep as many trajectories with the best response shown first as second (and so on), drawn seeded.

    Why: the accepted set inherits the sampling model's position bias (a model that favours the second
    position is right mostly when the label is shown second), and SFT on it teaches the bias, not the
    judgment. Returns the kept examples and how many were dropped. Examples of unknown position stay."""
    groups: dict[int, list[ChatExample]] = {}
    rest = []
    for ex in examples:
        (groups.setdefault(ex.best_shown, []) if ex.best_shown is not None else rest).append(ex)
    if len(groups) < 2:
        return list(examples), 0
    size = min(len(g) for g in groups.values())
    rng = random.Random(seed)
    kept = rest + [ex for pos in sorted(groups) for ex in rng.sample(groups[pos], size)]
    rng.shuffle(kept)
    return kept, len(examples) - len(kept)


def read_instruction_data(path: str | Path) -> list[ChatExample]:
    """General instruction data in TRL's forms: `messages` (the last turn is the assistant's answer), or
    `prompt` + `completion` (strings or message lists)."""
    path = Path(path)
    out = []
    for n, obj in _jsonl(path):
        where = f"{path}:{n}"
        if "messages" in obj:
            msgs = _messages(obj["messages"], f"{where}: messages")
            if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
                raise InputError(f"{where}: messages: expected the conversation to end with an assistant turn (the answer to learn)")
            out.append(ChatExample(msgs[:-1], msgs[-1]["content"], where, "mix"))
        elif "prompt" in obj and "completion" in obj:
            out.append(ChatExample(_messages(obj["prompt"], f"{where}: prompt"), _completion(obj["completion"], f"{where}: completion"), where, "mix"))
        else:
            raise InputError(f"{where}: expected messages, or prompt and completion (TRL's conversational or prompt-completion form)")
    if not out:
        raise InputError(f"{path}: no examples")
    return out


def mix_in(grm: Sequence[ChatExample], general: Sequence[ChatExample], ratio: float, seed: int) -> list[ChatExample]:
    """round(ratio * len(grm)) general examples drawn without replacement (all of them if fewer), shuffled in."""
    want = min(len(general), round(ratio * len(grm)))
    rng = random.Random(seed)
    picked = rng.sample(list(general), want) if want else []
    both = list(grm) + picked
    rng.shuffle(both)
    return both


def tokenize(layout, tokenizer, ex: ChatExample, max_length: int) -> dict | None:
    """input_ids and labels (prompt masked), or None when the example does not fit."""
    prompt = tokenizer(layout.prompt(ex.messages), add_special_tokens=False)["input_ids"]
    answer = tokenizer(ex.completion + layout.end_of_turn(), add_special_tokens=False)["input_ids"]
    if len(prompt) + len(answer) > max_length:
        return None
    return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}


class PadCollator:
    """Right-pads a batch: pad id for inputs, IGNORE for labels, 0 in the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        width = max(len(x["input_ids"]) for x in batch)
        ids = [x["input_ids"] + [self.pad_id] * (width - len(x["input_ids"])) for x in batch]
        labels = [x["labels"] + [IGNORE] * (width - len(x["labels"])) for x in batch]
        mask = [[1] * len(x["input_ids"]) + [0] * (width - len(x["input_ids"])) for x in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def lora_config(settings, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        target_modules=list(settings.lora_targets), bias="none", task_type=task_type,
    )


def training_arguments(settings, out: Path, **extra):
    """TrainingArguments from our settings; shared by SFT and (through GRPOConfig) RL."""
    import torch

    common = dict(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=settings.batch,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        max_steps=settings.steps if settings.steps > 0 else -1,
        num_train_epochs=settings.epochs,
        warmup_steps=settings.warmup,  # transformers 5 reads a float below 1 as a share of the steps
        logging_steps=settings.logging_steps,
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        report_to=[],
        bf16=settings.dtype == "bfloat16",
        fp16=settings.dtype == "float16",
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=False,
        **extra,
    )
    return common


def prepare_sft(layout, tokenizer, examples: Sequence[ChatExample], max_length: int) -> tuple[list[dict], dict]:
    data, too_long = [], {"grm": 0, "mix": 0}
    for ex in examples:
        t = tokenize(layout, tokenizer, ex, max_length)
        if t is None:
            too_long[ex.kind] += 1
        else:
            data.append(t)
    counts = {"grm": sum(1 for e in examples if e.kind == "grm") - too_long["grm"], "mix": sum(1 for e in examples if e.kind == "mix") - too_long["mix"], "too_long": too_long}
    return data, counts


def train_sft(model, tokenizer, layout, data: list[dict], settings, out: Path, *, resume: bool, callbacks: Sequence = ()):
    """Fit a fresh LoRA on `data`; returns the PEFT model (adapter only is saved by the caller)."""
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    if not data:
        raise InputError("no training examples: nothing was kept (see the acceptance counts), or every example is longer than max_length")
    peft_model = get_peft_model(model, lora_config(settings))
    args = TrainingArguments(**training_arguments(settings, out, remove_unused_columns=False))
    trainer = Trainer(model=peft_model, args=args, train_dataset=data, data_collator=PadCollator(tokenizer.pad_token_id), callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=resume or None)
    return peft_model


def too_easy_ids(path: str | Path) -> set[str]:
    """Record ids an RFT data file marked too easy (all N samples right): the paper leaves them out of RL too."""
    path = Path(path)
    ids = set()
    for n, obj in _jsonl(path):
        if "status" not in obj or "id" not in obj:
            raise InputError(f"{path}:{n}: not an RFT data line (expected the fields id and status, as `grm train rft` writes)")
        if obj["status"] == "too_easy":
            ids.add(str(obj["id"]))
    return ids
