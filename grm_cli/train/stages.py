"""The two SPCT training stages as Python calls (the CLI is a thin skin over these).

fit_rft: LoRA SFT on the accepted trajectories of rejective sampling (+ optional general data).
fit_rl:  GRPO with the rule reward, on top of an RFT adapter when one is given.
Both write into a RunDir and save the adapter with grm-adapter.json (what it was trained on, how).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record
from grm_cli.errors import InputError
from grm_cli.models.lora_targets import trainable_targets
from grm_cli.train.base_model import BaseInfo, chat_layout_for, load_for_training, read_info, save_info
from grm_cli.train.deps import require_training_stack
from grm_cli.train.run_dir import RunDir, is_main_process, metrics_callback
from grm_cli.train.settings import LINEAR_TARGETS, TrainSettings


def _with_targets(settings: TrainSettings, info: BaseInfo) -> TrainSettings:
    """The LoRA targets llama.cpp can run for this architecture (a refused one is a one-line error)."""
    return replace(settings, lora_targets=trainable_targets(info.arch, settings.lora_targets, LINEAR_TARGETS))


def _seed(settings: TrainSettings) -> None:
    from transformers import set_seed

    set_seed(settings.seed)


def _save(peft_model, run: RunDir, info: BaseInfo, **extra) -> Path:
    if is_main_process():
        peft_model.save_pretrained(str(run.adapter))
        save_info(run.adapter, info, **extra)
    return run.adapter


def fit_rft(model_ref: str, accepted: Path, run: RunDir, settings: TrainSettings, template: Template, *, resume: bool = False) -> dict:
    """SFT of a fresh LoRA on the kept examples of `accepted` (a `grm train rft-data` file)."""
    require_training_stack()
    run.open(resume=resume)
    from grm_cli.train.sft import balance_positions, mix_in, prepare_sft, read_instruction_data, read_rft_examples, train_sft

    examples = read_rft_examples(accepted)
    if not examples:
        raise InputError(f"{accepted}: no accepted trajectories to train on (every record was too easy or had nothing right)")
    dropped = 0
    if settings.balance_positions:
        examples, dropped = balance_positions(examples, settings.seed)
    if settings.mix and settings.mix_ratio > 0:
        examples = mix_in(examples, read_instruction_data(settings.mix), settings.mix_ratio, settings.seed)
    _seed(settings)
    model, tokenizer, info = load_for_training(model_ref, dtype=settings.dtype)
    settings = _with_targets(settings, info)
    layout = chat_layout_for(tokenizer)
    data, counts = prepare_sft(layout, tokenizer, examples, settings.max_length)
    counts["dropped_to_balance"] = dropped
    run.log({"stage": "rft", "event": "data", **counts})
    peft_model = train_sft(model, tokenizer, layout, data, settings, run.root, resume=resume and run.has_checkpoint(), callbacks=[metrics_callback(run, "rft")])
    _save(peft_model, run, info, stage="rft", template=template.name, settings=settings.to_json(), trained_on=str(accepted))
    return {"adapter": str(run.adapter), **counts}


def fit_rl(model_ref: str, records: Sequence[Record], run: RunDir, settings: TrainSettings, template: Template, *, rft_adapter: Path | None = None, resume: bool = False) -> dict:
    """GRPO with the rule reward. With `rft_adapter`, that adapter is merged into the weights first: the
    RL LoRA trains on top of it and the KL reference is the RFT model, as in the paper."""
    require_training_stack()
    run.open(resume=resume)
    from grm_cli.train.grpo import RuleReward, rl_prompts, train_grpo

    if not records:
        raise InputError("no labelled records to train on")
    _seed(settings)
    model, tokenizer, info = load_for_training(model_ref, dtype=settings.dtype)
    settings = _with_targets(settings, info)
    stacked_on = None
    if rft_adapter is not None:
        below = read_info(rft_adapter)["base"]
        if below.get("gguf_fingerprint") != info.gguf_fingerprint or below.get("n_layer") != info.n_layer:
            raise InputError(f"{rft_adapter}: this adapter was trained on {below.get('ref')}, not on {model_ref}")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(rft_adapter)).merge_and_unload()
        stacked_on = os.path.relpath(Path(rft_adapter).resolve(), run.adapter.resolve())
    layout = chat_layout_for(tokenizer)
    prompts = rl_prompts(records, template, layout, seed=settings.seed)
    fits = [p for p in prompts if len(tokenizer(p.prompt, add_special_tokens=False)["input_ids"]) + settings.max_completion <= settings.max_length]
    run.log({"stage": "rl", "event": "data", "records": len(prompts), "too_long": len(prompts) - len(fits)})
    if not fits:
        raise InputError(f"every prompt is longer than max_length {settings.max_length} minus max_completion {settings.max_completion}")
    reward = RuleReward(template)
    peft_model = train_grpo(model, tokenizer, [p.to_row() for p in fits], reward, settings, run.root, resume=resume and run.has_checkpoint(), callbacks=[metrics_callback(run, "rl")])
    _save(peft_model, run, info, stage="rl", template=template.name, settings=settings.to_json(), stacked_on=stacked_on)
    summary = {"adapter": str(run.adapter), "records": len(fits), "too_long": len(prompts) - len(fits), "completions": reward.seen, "unparsed": reward.unparsed}
    run.log({"stage": "rl", "event": "done", **summary})
    return summary
