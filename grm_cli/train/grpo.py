"""Rule-based online RL (paper §3.2, Eq. 11): GRPO whose reward is +1 when a sampled judgment's scores
single out the labelled best response (or equal a single response's label), else -1. No format reward:
an unparsed judgment is simply wrong, and the KL penalty (beta) keeps the format.

The reward parses completions with `pipeline.judged_scores` and judges them with `rules.rl_reward`: the
parser and rule that scoring, evaluation and rejective sampling use. TRL's GRPOTrainer does the rest
(group sampling, group-normalised advantages, clipped ratio, KL to the reference, LoRA through PEFT).

Each record is rendered exactly as llama.cpp is given it (chat template, generation prompt, the template's
pre-filled answer start), in a response order that changes from one pass over the data to the next: the
paper shuffles the order per sample, and a record kept in one order for the whole run lets the policy earn
its reward by learning a position. `view_order` goes round the n rotations of a seeded order (each
response shown once in every position per n passes), then draws a fresh seeded order; pass 0 is the order
of scoring's sample 0. A GRPO group shares one prompt (its advantages compare completions of the same
text), so the order changes between groups of the same record, not within one. The reward reads each
row's own `order`: scores are mapped back through the order that completion was shown.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, replace
from typing import Sequence

from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record, record_from_dict
from grm_cli.core.rules import label_of, rl_reward
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.scoring.plan import judged_scores


@dataclass(frozen=True)
class RLPrompt:
    id: str
    prompt: str  # the exact text the policy continues
    prefix: str  # the pre-filled answer start (part of `prompt`; the parser needs it)
    order: tuple[int, ...]
    label: int
    view: int = 0  # which pass over the data this rendering is for (its order is `view_order`'s)
    record: Record | None = None  # what was rendered, so later passes can show it in their own order
    seed: int = 0
    shuffle: bool = True

    def to_row(self) -> dict:
        """A training row. `source` (the record in grm's input form, the seed) lets `pass_rows` render the
        record again in each later pass's order; it is dropped before the rows become the dataset."""
        row = {"prompt": self.prompt, "record_id": self.id, "prefix": self.prefix, "order": list(self.order), "label": self.label, "view": self.view}
        if self.record is not None:
            row["source"] = {"record": record_json(self.record), "seed": self.seed, "shuffle": self.shuffle}
        return row


def record_json(rec: Record) -> dict:
    """A record in grm's own input form (what `record_from_dict` reads back), with only what RL renders."""
    obj = {"id": rec.id, "prompt": [{"role": t.role, "content": t.content} for t in rec.context], "responses": list(rec.responses)}
    if rec.preferred is not None:
        obj["preferred"] = rec.preferred
    if rec.label is not None:
        obj["label"] = rec.label
    return obj


def view_order(n: int, seed: int, record_id: str, view: int, shuffle: bool = True) -> tuple[int, ...]:
    """The order a record is shown in on pass `view` of RL training: rotation `view % n` of the seeded order
    of cycle `view // n` (the order scoring draws for sample `view // n`). Within each cycle consecutive
    passes differ and every response is shown once in every position, so no position earns more reward."""
    base = response_order(n, sample_seed(seed, record_id, view // n), shuffle)
    r = view % n if shuffle else 0
    return base[r:] + base[:r]


def rl_prompts(records: Sequence[Record], template: Template, layout, *, seed: int, shuffle: bool = True, view: int = 0) -> list[RLPrompt]:
    out = []
    for rec in records:
        rec = replace(rec, principles=None)
        template.check_count(rec)
        label = label_of(rec, "RL training")
        order = view_order(len(rec.responses), seed, rec.id, view, shuffle)
        p = render(template, rec, order)
        out.append(RLPrompt(rec.id, layout.prompt(p.messages, p.assistant_prefix), p.assistant_prefix, order, label, view, rec, seed, shuffle))
    return out


def passes_needed(settings, prompts: int, world: int = 1) -> int:
    """How many passes over `prompts` records the run consumes: with `steps`, each optimizer step takes
    batch * grad_accum * world / group prompts (every prompt gets a group of completions); else `epochs`."""
    if settings.steps > 0:
        per_step = settings.batch * settings.grad_accum * world // settings.group
        return max(1, math.ceil(settings.steps * per_step / max(1, prompts)))
    return max(1, math.ceil(settings.epochs))


def pass_rows(rows: Sequence[dict], template: Template, layout, passes: int, seed: int = 0) -> list[dict]:
    """The training data as `passes` consecutive passes over `rows` (`RLPrompt.to_row()` rows): pass v
    shows every record in `view_order(..., v)` and in its own seeded shuffle of the records. The trainer
    reads them in this order (its own shuffle off), so pass v of the data is pass v of the run."""
    out = []
    for v in range(passes):
        block = []
        for row in rows:
            src = row.get("source")
            if src is None:  # a row without its record (made by hand): shown as it is
                block.append({k: x for k, x in row.items() if k != "source"} | {"view": v})
                continue
            rec = record_from_dict(src["record"], "<rl rows>")
            (p,) = rl_prompts([rec], template, layout, seed=src["seed"], shuffle=src["shuffle"], view=v)
            block.append({k: x for k, x in p.to_row().items() if k != "source"})
        random.Random(f"rl-pass\x00{seed}\x00{v}").shuffle(block)
        out += block
    return out


class RuleReward:
    """TRL reward function: +1/-1 by the correctness rule. Also counts what it saw, for the metrics."""

    __name__ = "rule_reward"  # TRL names the logged reward column after the function

    def __init__(self, template: Template):
        self.template = template
        self.seen = 0
        self.unparsed = 0

    def __call__(self, prompts, completions, *, prefix, order, label, **_) -> list[float]:
        rewards = []
        for completion, pre, ord_, lab in zip(completions, prefix, order, label):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            judgment, scores = judged_scores(self.template, pre + text, ord_, scores_from=len(pre))
            self.seen += 1
            self.unparsed += scores is None
            rewards.append(rl_reward(scores, lab))
        return rewards


def train_grpo(model, tokenizer, rows: list[dict], reward: RuleReward, settings, out, *, resume: bool, callbacks: Sequence = ()):
    """GRPO with a fresh LoRA on `model` (an RFT adapter is merged into it first by the caller, so the
    KL reference, the model with its LoRA off, is the RFT model). Returns the trained PEFT model."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from grm_cli.train.base_model import chat_layout_for
    from grm_cli.train.sft import lora_config, training_arguments

    if settings.batch % settings.group:
        from grm_cli.errors import InputError

        raise InputError(f"batch {settings.batch} must be a multiple of group {settings.group}: each step samples whole groups")
    passes = passes_needed(settings, len(rows), int(os.environ.get("WORLD_SIZE", "1")))
    data = pass_rows(rows, reward.template, chat_layout_for(tokenizer), passes, settings.seed)
    arguments = training_arguments(settings, out)
    arguments["num_train_epochs"] = settings.epochs / passes  # the dataset holds `passes` passes already
    args = GRPOConfig(
        **arguments,
        num_generations=settings.group,
        max_completion_length=settings.max_completion,
        temperature=settings.temperature,
        top_p=1.0,
        beta=settings.beta,
        scale_rewards="group",  # advantage = (r - mean) / std over the group, as the paper's GRPO
        shuffle_dataset=False,  # `pass_rows` ordered the passes (and shuffled within each): keep that order
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(data),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        callbacks=list(callbacks),
    )
    trainer.train(resume_from_checkpoint=resume or None)
    return trainer.model
