"""SPCT training on a tiny llama model that the test writes itself (no hub): LoRA SFT, GRPO, export to a
llama.cpp adapter whose effect on llama.cpp's logits matches transformers', --merge, --lora, resume."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import grm_process, llama_logits

from grm_cli.core.prompt import load_template
from grm_cli.errors import InputError
from grm_cli.io.jsonl import read_records
from grm_cli.train.base_model import chat_layout_for, load_for_training, read_info, save_info
from grm_cli.train.export import read_peft_adapter, write_adapter_gguf
from grm_cli.train.run_dir import RunDir
from grm_cli.train.settings import load_settings
from grm_cli.train.stages import fit_rft, fit_rl

# The training stack is an optional extra. Looked up, not imported: importing torch, peft and trl takes
# seconds, which a `-m "not slow"` run would pay just to collect this file.
MISSING = [m for m in ("torch", "peft", "trl") if importlib.util.find_spec(m) is None]
needs_training_stack = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install 'grm-cli[train]')")

def grm(*args, check=True):
    p = grm_process(*args, timeout=600)  # a child process: torch's threads and the trainer's state stay out of the test process
    if check and p.returncode != 0:
        raise AssertionError(f"grm {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def hf_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


@pytest.mark.slow
@needs_training_stack
def test_training_text_is_the_text_llama_cpp_scores(tiny_model, tiny_engine):
    """One chat layout: the trainer's prompt string and its tokens equal the engine's."""
    _, tokenizer, info = load_for_training(str(tiny_model))
    layout = chat_layout_for(tokenizer)
    msgs = [{"role": "user", "content": "Score these: [1] 4 [2] 5"}]
    assert layout.prompt(msgs, "Specific Criteria:") == tiny_engine.render(msgs, "Specific Criteria:")
    text = tiny_engine.render(msgs, "Specific Criteria:") + " x\nScores: \\boxed{9, 2}" + layout.end_of_turn()
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == tiny_engine._tokens(text)
    assert (info.arch, info.n_head, info.n_head_kv, info.kind) == ("llama", 4, 2, "gguf")


@pytest.mark.slow
@needs_training_stack
def test_exported_adapter_moves_llama_cpp_logits_as_transformers_does(tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    model, _, info = load_for_training(str(tiny_model))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    g = torch.Generator().manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.5
    base_cpp, ids = llama_logits(tiny_model, None)
    with peft_model.disable_adapter():
        base_hf = hf_logits(peft_model, ids)
    tuned_hf = hf_logits(peft_model, ids)
    peft_model.save_pretrained(str(tmp_path / "ad"))
    save_info(tmp_path / "ad", info)
    gguf_path = write_adapter_gguf(read_peft_adapter(tmp_path / "ad"), tmp_path / "ad.gguf")
    tuned_cpp, _ = llama_logits(tiny_model, gguf_path)
    moved = np.abs(tuned_hf - base_hf).max()
    assert moved > 1.0  # the adapter matters...
    assert np.abs(base_cpp - base_hf).max() < 0.01  # ...both engines agree on the base...
    assert np.abs(tuned_cpp - tuned_hf).max() < 0.02 * moved  # ...and on the adapted model (q/k permuted right)


@pytest.mark.slow
@needs_training_stack
def test_train_rft_end_to_end_then_score_with_lora(tiny_model, arith, short_template, tmp_path):
    out = tmp_path / "rft"
    p = grm("train", "rft", arith, "-m", tiny_model, "-t", short_template, "-o", out, "--max-tokens", 8, "--steps", 6,
            "--lr", "1e-2", "--lora-rank", 4, "--batch", 4, "--no-cache")
    assert "too easy" in p.stderr and "adapter:" in p.stderr
    lines = [json.loads(x) for x in (out / "accepted.jsonl").read_text().splitlines()]
    assert len(lines) == 16 and {x["status"] for x in lines} <= {"kept", "too_easy", "nothing_right"}
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("event") == "acceptance" and m["records"] == 16 for m in metrics)
    assert any("loss" in m for m in metrics)
    info = read_info(out / "adapter")
    assert info["stage"] == "rft" and info["base"]["arch"] == "llama"
    # the adapter changes what llama.cpp computes
    base, _ = llama_logits(tiny_model, None)
    tuned, _ = llama_logits(tiny_model, out / "adapter.gguf")
    assert np.abs(tuned - base).max() > 1e-3
    # grm score --lora runs it and says so in the results
    s = grm("score", arith, "-m", tiny_model, "-t", short_template, "--lora", out / "adapter.gguf", "-k", 2, "--max-tokens", 8, "--json", "--no-cache")
    first = json.loads(s.stdout.splitlines()[0])
    assert "LoRA adapter.gguf" in first["run"]["model"]
    # a finished adapter is never overwritten
    again = grm("train", "rft", arith, "-m", tiny_model, "-t", short_template, "-o", out, "--steps", 1, check=False)
    assert again.returncode == 2 and "finished adapter is already here" in again.stderr


def test_lora_errors_are_clear(tiny_model, arith, short_template, tmp_path):
    p = grm("score", arith, "-m", tiny_model, "-t", short_template, "--lora", tmp_path / "nope.gguf", check=False)
    assert p.returncode != 0 and "no such adapter file" in p.stderr and "Traceback" not in p.stderr
    p = grm("score", arith, "-m", tiny_model, "-t", short_template, "--lora", tiny_model, check=False)
    assert p.returncode != 0 and "not a LoRA adapter GGUF" in p.stderr


@pytest.mark.slow
@needs_training_stack
def test_grpo_on_an_rft_adapter_learns_and_exports_as_one_adapter(tiny_model, arith, clean_rft, short_template, tmp_path):
    tmpl = load_template(str(short_template))
    rft = RunDir(tmp_path / "rft")
    fit_rft(str(tiny_model), clean_rft, rft, load_settings("rft", None, {"steps": 150, "learning_rate": 3e-2, "batch": 8, "lora_rank": 16, "save_steps": 1000}), tmpl)
    rl = RunDir(tmp_path / "rl")
    settings = load_settings("rl", None, {"steps": 4, "learning_rate": 1e-2, "batch": 8, "group": 4, "temperature": 0.5, "max_completion": 40, "lora_rank": 4, "save_steps": 1000})
    summary = fit_rl(str(tiny_model), read_records(str(arith)), rl, settings, tmpl, rft_adapter=rft.adapter)
    assert summary["completions"] == 32
    logs = [json.loads(x) for x in rl.metrics.read_text().splitlines()]
    steps = [m for m in logs if "reward" in m]
    assert len(steps) == 4 and all(-1.0 <= m["reward"] <= 1.0 for m in steps) and "kl" in steps[0]
    assert any(m["reward_std"] > 0 for m in steps), "no group ever had differing rewards: GRPO had nothing to learn from"
    assert read_info(rl.adapter)["stacked_on"]
    # the RL LoRA moved the model, and the exported file (RFT + RL in one) matches transformers
    from peft import PeftModel

    model, _, _ = load_for_training(str(tiny_model))
    merged = PeftModel.from_pretrained(model, str(rft.adapter)).merge_and_unload()
    rft_cpp, ids = llama_logits(tiny_model, write_adapter_gguf(read_peft_adapter(rft.adapter), tmp_path / "rft.gguf"))
    both_cpp, _ = llama_logits(tiny_model, write_adapter_gguf(read_peft_adapter(rl.adapter), tmp_path / "both.gguf"))
    both_hf = hf_logits(PeftModel.from_pretrained(merged, str(rl.adapter)), ids)
    assert np.abs(both_cpp - rft_cpp).max() > 1e-3
    diff = np.abs(both_cpp - both_hf)
    assert diff.max() < 0.1 and np.median(diff) < 0.01  # float32 vs llama.cpp kernels, on strongly trained weights


@pytest.mark.slow
@needs_training_stack
def test_merge_folds_the_adapter_into_a_quantized_gguf(tiny_model, clean_rft, short_template, tmp_path):
    tmpl = load_template(str(short_template))
    run = RunDir(tmp_path / "rft")
    fit_rft(str(tiny_model), clean_rft, run, load_settings("rft", None, {"steps": 3, "learning_rate": 3e-2, "batch": 8, "lora_rank": 4}), tmpl)
    grm("export", run.adapter, "--to", tmp_path / "a.gguf")
    grm("export", run.adapter, "--merge", "--quant", "F32", "--to", tmp_path / "merged.gguf")
    with_lora, _ = llama_logits(tiny_model, tmp_path / "a.gguf")
    merged, _ = llama_logits(tmp_path / "merged.gguf", None)
    assert np.abs(merged - with_lora).max() < 0.01
    p = grm("export", run.adapter, "--to", tmp_path / "a.gguf", check=False)
    assert p.returncode == 2 and "exists" in p.stderr
    p = grm("export", run.adapter, "--merge", "--quant", "Q9_Z", "--to", tmp_path / "m2.gguf", check=False)
    assert p.returncode == 2 and "not a llama.cpp file type" in p.stderr


@pytest.mark.slow
@needs_training_stack
def test_resume_goes_on_from_the_last_checkpoint(tiny_model, clean_rft, short_template, tmp_path):
    tmpl = load_template(str(short_template))
    settings = load_settings("rft", None, {"steps": 4, "save_steps": 2, "learning_rate": 1e-2, "batch": 4, "lora_rank": 4})
    run = RunDir(tmp_path / "rft")
    fit_rft(str(tiny_model), clean_rft, run, settings, tmpl)
    # an interrupted run: no adapter yet, the last checkpoint lost, an earlier one kept
    import shutil

    shutil.rmtree(run.adapter)
    shutil.rmtree(run.checkpoints / "checkpoint-4")
    with pytest.raises(InputError, match="add --resume"):
        fit_rft(str(tiny_model), clean_rft, run, settings, tmpl)
    before = len(run.metrics.read_text().splitlines())
    fit_rft(str(tiny_model), clean_rft, run, settings, tmpl, resume=True)
    after = [json.loads(x) for x in run.metrics.read_text().splitlines()[before:]]
    assert [m["step"] for m in after if "loss" in m] == [3, 4]  # steps 1-2 were not trained again
    assert run.finished()
