"""Rule-based online RL (paper §3.2, Eq. 11): GRPO whose reward is +1 when a sampled judgment's scores
single out the labelled best response (or equal a single response's label), else -1. No format reward:
an unparsed judgment is simply wrong, and the KL penalty (beta) keeps the format.

The reward parses completions with `pipeline.judged_scores` and judges them with `rules.rl_reward`: the
parser and rule that scoring, evaluation and rejective sampling use. TRL's GRPOTrainer does the rest
(group sampling, group-normalised advantages, clipped ratio, KL to the reference, LoRA through PEFT).

Each record is shown in one seeded shuffled order (as a scoring sample would be), rendered exactly as
llama.cpp is given it: chat template, generation prompt, and the template's pre-filled answer start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record
from grm_cli.core.rules import label_of, rl_reward
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.scoring.pipeline import judged_scores


@dataclass(frozen=True)
class RLPrompt:
    id: str
    prompt: str  # the exact text the policy continues
    prefix: str  # the pre-filled answer start (part of `prompt`; the parser needs it)
    order: tuple[int, ...]
    label: int

    def to_row(self) -> dict:
        return {"prompt": self.prompt, "record_id": self.id, "prefix": self.prefix, "order": list(self.order), "label": self.label}


def rl_prompts(records: Sequence[Record], template: Template, layout, *, seed: int, shuffle: bool = True) -> list[RLPrompt]:
    out = []
    for rec in records:
        rec = replace(rec, principles=None)
        template.check_count(rec)
        label = label_of(rec, "RL training")
        order = response_order(len(rec.responses), sample_seed(seed, rec.id, 0), shuffle)
        p = render(template, rec, order)
        out.append(RLPrompt(rec.id, layout.prompt(p.messages, p.assistant_prefix), p.assistant_prefix, order, label))
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

    from grm_cli.train.sft import lora_config, training_arguments

    if settings.batch % settings.group:
        from grm_cli.errors import InputError

        raise InputError(f"batch {settings.batch} must be a multiple of group {settings.group}: each step samples whole groups")
    args = GRPOConfig(
        **training_arguments(settings, out),
        num_generations=settings.group,
        max_completion_length=settings.max_completion,
        temperature=settings.temperature,
        top_p=1.0,
        beta=settings.beta,
        scale_rewards="group",  # advantage = (r - mean) / std over the group, as the paper's GRPO
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        callbacks=list(callbacks),
    )
    trainer.train(resume_from_checkpoint=resume or None)
    return trainer.model
