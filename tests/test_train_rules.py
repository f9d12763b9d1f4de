"""The parts of SPCT training that need no torch: settings (defaults < file < flags, clear errors), the RL
reward on hand-made outputs (one parser, one rule), RFT data reading, mixing, the adapter maths."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import RecordingEngine, write_jsonl

from grm_cli.core.prompt import load_template
from grm_cli.core.records import Record, Turn
from grm_cli.core.rules import is_correct
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.errors import InputError
from grm_cli.scoring.pipeline import score_record
from grm_cli.scoring.settings import ScoreSettings
from grm_cli.train.base_model import BaseInfo
from grm_cli.train.export import LoraPair, LoraWeights, permute_rows, stack
from grm_cli.train.grpo import RuleReward, pass_rows, passes_needed, rl_prompts, view_order
from grm_cli.train.settings import load_settings
from grm_cli.train.sft import ChatExample, balance_positions, mix_in, read_instruction_data, read_rft_examples, too_easy_ids

T = load_template("pointwise")


# -- settings ------------------------------------------------------------------------------------
def test_settings_defaults_then_file_then_stage_section_then_flags(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("lora_rank: 8\nlearning_rate: 1.0e-4\nlora_targets: [q_proj, v_proj]\nrl:\n  beta: 0.002\n  lora_rank: 4\n")
    rft = load_settings("rft", cfg, {"steps": 7, "lora_rank": None})
    assert (rft.lora_rank, rft.learning_rate, rft.steps, rft.lora_targets) == (8, 1e-4, 7, ("q_proj", "v_proj"))
    assert type(rft).__name__ == "RFTConfig" and not hasattr(rft, "beta")  # each stage has only its own settings
    rl = load_settings("rl", cfg, {"beta": None})
    assert (rl.lora_rank, rl.beta, rl.group) == (4, 0.002, 4) and type(rl).__name__ == "RLConfig"
    assert (load_settings("rft", None, {}).temperature, rl.temperature) == (0.5, 1.0)  # one name, each stage's own default
    assert load_settings("rl", cfg, {"beta": 0.5}).beta == 0.5  # a flag beats the file
    assert load_settings("rl", None, {}).learning_rate == 2e-5  # RL's own default


@pytest.mark.parametrize(
    "stage, text, words",
    [
        ("rl", "lora_rnak: 8\n", ["unknown setting 'lora_rnak'", "lora_rank"]),
        ("rl", "steps: many\n", ["steps", "expected a whole number"]),
        ("rl", "group: 1\n", ["group", "expected 2 or more"]),
        ("rft", "mix_ratio: 0.5\n", ["mix_ratio", "needs mix"]),
        ("rl", "mix_ratio: lots\n", ["mix_ratio", "expected a number"]),  # the other stage's key is checked too
        ("rft", "rft:\n  beta: 0.1\n", ["unknown setting 'beta'"]),  # a stage section holds only its stage's keys
        ("rl", "rl: [1, 2]\n", ["rl", "expected a mapping"]),
        ("rl", "lora_rank: [\n", ["bad.yaml:2:", "invalid YAML"]),  # FILE:LINE
        ("rl", "- 1\n", ["expected a mapping of settings"]),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path, stage, text, words):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(InputError) as e:
        load_settings(stage, cfg, {})
    assert str(cfg) in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_batch_flag_type_error_says_command_line():
    with pytest.raises(InputError, match="command line: batch"):
        load_settings("rft", None, {"batch": "four"})


# -- the RL reward ----------------------------------------------------------------------------------
def two(preferred=1) -> Record:
    return Record(id="q", context=(Turn("user", "What is 2+2?"),), responses=("5", "4"), preferred=preferred)


def call(reward, completions, order, label, prefix="Specific Criteria:"):
    n = len(completions)
    return reward(["p"] * n, completions, prefix=[prefix] * n, order=[list(order)] * n, label=[label] * n)


def test_rule_reward_is_plus_one_only_when_the_scores_single_out_the_label():
    r = RuleReward(T)
    got = call(r, [
        " math\nAnalysis: 4 is right\nScores: \\boxed{2, 9}",   # shown order = record order: right
        " math\nAnalysis: 5 is right\nScores: \\boxed{9, 2}",   # wrong
        " math\nAnalysis: both fine\nScores: \\boxed{7, 7}",    # a tie is wrong
        " math\nAnalysis: I cannot decide",                     # unparsed: wrong, never a silent tie
        " math\nScores: \\boxed{2, 11}",                         # out of range: unparsed
        " math\nScores: \\boxed{x, x}",                          # the template's placeholder: unparsed
    ], (0, 1), 1)
    assert got == [1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
    assert (r.seen, r.unparsed) == (6, 3)


def test_rule_reward_maps_shown_scores_back_through_the_shuffled_order():
    r = RuleReward(T)
    # shown order (1, 0): position 1 shows record response 1 ("4", the label); so the FIRST shown score is its
    assert call(r, [" x\nScores: \\boxed{9, 2}", " x\nScores: \\boxed{2, 9}"], (1, 0), 1) == [1.0, -1.0]


def test_rule_reward_single_response_equals_its_label_and_agrees_with_is_correct():
    single = load_template("single")
    r = RuleReward(single)
    got = call(r, [" c\nAnalysis: wrong\nScore: \\boxed{0}", " c\nAnalysis: right\nScore: \\boxed{1}"], (0,), 0)
    assert got == [1.0, -1.0]
    assert [is_correct((0,), 0), is_correct((1,), 0)] == [True, False]


def test_scores_pre_filled_in_the_prompt_never_count():
    r = RuleReward(T)
    # a prefix that holds a score line: only the model's own text may score
    assert call(r, [" and then nothing"], (0, 1), 1, prefix="Specific Criteria: x\nScores: \\boxed{1, 9}") == [-1.0]


def test_rl_prompts_render_the_scoring_layout_with_a_seeded_order(tiny_engine):
    """GRPO trains on the very text `grm score` sends llama.cpp for sample 0 with the same seed: the same
    shown order and the same chat layout (the real one, read from the tiny model's GGUF)."""
    recs = [two(1), Record(id="q2", context=(Turn("user", "3+3?"),), responses=("6", "7"), preferred=0)]
    a = rl_prompts(recs, T, tiny_engine.layout, seed=3)
    assert a == rl_prompts(recs, T, tiny_engine.layout, seed=3)
    for p, rec in zip(a, recs):
        engine = RecordingEngine(tiny_engine)
        sample = score_record(rec, engine, T, ScoreSettings(k=1, seed=3, max_tokens=1)).samples[0]
        (req,) = engine.requests
        assert p.order == sample.order and p.prefix == req.assistant_prefix == "Specific Criteria:"
        assert p.prompt == tiny_engine.render(req.messages, req.assistant_prefix)
        assert p.prompt.startswith("<|im_start|>") and p.prompt.endswith("<|im_start|>assistant\nSpecific Criteria:")
        assert p.label == rec.preferred


# -- RFT data and general data ------------------------------------------------------------------------
def test_rft_examples_and_too_easy_ids(tmp_path):
    ex = {"prompt": [{"role": "user", "content": "judge"}], "completion": [{"role": "assistant", "content": "Scores: \\boxed{1, 9}"}], "hinted": True}
    f = write_jsonl(tmp_path / "acc.jsonl", [
        {"id": "a", "status": "kept", "right": 1, "wrong": 2, "hinted_kept": True, "examples": [ex, ex]},
        {"id": "b", "status": "too_easy", "right": 3, "wrong": 0, "hinted_kept": None, "examples": []},
    ])
    got = read_rft_examples(f)
    assert len(got) == 2 and got[0].messages == ({"role": "user", "content": "judge"},) and got[0].completion.startswith("Scores")
    assert too_easy_ids(f) == {"b"}


def test_rft_examples_errors_say_file_line_and_field(tmp_path):
    f = write_jsonl(tmp_path / "acc.jsonl", [{"id": "a", "status": "kept", "examples": [{"prompt": [{"role": "user"}], "completion": "x"}]}])
    with pytest.raises(InputError, match=r"acc.jsonl:1: examples\[0\]\.prompt\[0\]: expected a message"):
        read_rft_examples(f)
    g = write_jsonl(tmp_path / "scores.jsonl", [{"id": "a", "scores": [1, 2]}])
    with pytest.raises(InputError, match="scores.jsonl:1: not an RFT data line"):
        read_rft_examples(g)


def test_instruction_data_forms_and_mixing(tmp_path):
    f = write_jsonl(tmp_path / "mix.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"prompt": "2+2?", "completion": "4"},
        {"prompt": [{"role": "user", "content": "name?"}], "completion": [{"role": "assistant", "content": "grm"}]},
    ])
    mix = read_instruction_data(f)
    assert [(m.messages[-1]["content"], m.completion, m.kind) for m in mix] == [("hi", "hello", "mix"), ("2+2?", "4", "mix"), ("name?", "grm", "mix")]
    grm = [ChatExample(({"role": "user", "content": str(i)},), "s", "x") for i in range(4)]
    both = mix_in(grm, mix, 0.5, seed=1)
    assert len(both) == 6 and sum(e.kind == "mix" for e in both) == 2
    assert mix_in(grm, mix, 0.5, seed=1) == both  # seeded
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(InputError, match="bad.jsonl:1: messages: expected the conversation to end with an assistant turn"):
        read_instruction_data(bad)


# -- adapter maths ---------------------------------------------------------------------------------
def test_permute_rows_interleaves_each_heads_rotary_halves():
    head_dim, heads = 4, 2
    w = np.arange(head_dim * heads, dtype=np.float32)[:, None]  # row i holds i
    got = permute_rows(w, heads)[:, 0].tolist()
    # per head, halves (0,1 | 2,3) become pairs (0,2), (1,3)
    assert got == [0, 2, 1, 3, 4, 6, 5, 7]


def test_stacked_adapters_are_one_adapter_of_the_summed_delta():
    rng = np.random.default_rng(0)
    info = BaseInfo("m.gguf", "gguf", "llama", 2, 2, 1, None)
    def lw(r, scale):
        return LoraWeights({"model.layers.0.self_attn.v_proj.weight": LoraPair(rng.normal(size=(r, 8)).astype(np.float32), rng.normal(size=(6, r)).astype(np.float32), scale)}, info)
    low, up = lw(2, 0.5), lw(3, 2.0)
    both = stack(low, up).pairs["model.layers.0.self_attn.v_proj.weight"]
    name = "model.layers.0.self_attn.v_proj.weight"
    want = low.pairs[name].scale * low.pairs[name].b @ low.pairs[name].a + up.pairs[name].scale * up.pairs[name].b @ up.pairs[name].a
    assert both.a.shape == (5, 8) and np.allclose(both.scale * both.b @ both.a, want, atol=1e-5)


def test_settings_json_roundtrip_is_plain(tmp_path):
    s = load_settings("rft", None, {})
    assert json.loads(json.dumps(s.to_json()))["lora_targets"][0] == "q_proj"


def test_balance_positions_keeps_equal_counts_per_shown_position_of_the_best(tmp_path):
    def ex(order, scores):
        return {"prompt": "judge", "completion": "Scores: \\boxed{1, 9}", "hinted": False, "order": order, "scores": scores}
    # record-order scores; the label is record index 1 (top score). order (0, 1) shows it second, (1, 0) first
    second = [ex([0, 1], [2, 9])] * 5
    first = [ex([1, 0], [3, 8])] * 2
    unknown = [{"prompt": "judge", "completion": "x"}]
    f = write_jsonl(tmp_path / "acc.jsonl", [{"id": "a", "status": "kept", "examples": second + first + unknown}])
    examples = read_rft_examples(f)
    assert [e.best_shown for e in examples] == [1] * 5 + [0] * 2 + [None]
    kept, dropped = balance_positions(examples, seed=0)
    assert dropped == 3 and len(kept) == 5
    assert [e.best_shown for e in kept].count(0) == 2 and [e.best_shown for e in kept].count(1) == 2 and [e.best_shown for e in kept].count(None) == 1
    assert balance_positions(examples, seed=0) == (kept, dropped)  # seeded


def test_training_targets_follow_what_llama_cpp_can_run_per_architecture():
    from grm_cli.models.lora_targets import ADAPTER_TARGETS, trainable_targets
    from grm_cli.train.settings import LINEAR_TARGETS

    assert trainable_targets("llama", LINEAR_TARGETS, LINEAR_TARGETS) == LINEAR_TARGETS
    assert trainable_targets("phi3", LINEAR_TARGETS, LINEAR_TARGETS) == ADAPTER_TARGETS["phi3"]  # the default narrows
    assert trainable_targets("deepseek2", LINEAR_TARGETS, LINEAR_TARGETS) == ("o_proj",)
    assert trainable_targets("some-new-arch", ("q_proj",), LINEAR_TARGETS) == ("q_proj",)  # unknown: as given
    with pytest.raises(InputError, match=r"q_proj: llama\.cpp cannot run an adapter on them for deepseek2.*only with `grm export --merge`"):
        trainable_targets("deepseek2", ("q_proj",), LINEAR_TARGETS)
    with pytest.raises(InputError, match="gate_proj"):
        trainable_targets("phi3", ("gate_proj",), LINEAR_TARGETS)


# -- RL: the response order changes from pass to pass ------------------------------------------------------
def three(rid="q3", preferred=2) -> Record:
    return Record(id=rid, context=(Turn("user", "Answer in lowercase: what is ice?"),), responses=("Frozen water.", "FROZEN WATER.", "frozen water."), preferred=preferred)


def test_view_orders_go_round_every_position_and_are_seeded():
    for n in (2, 3, 4):
        orders = [view_order(n, 7, "rec", v) for v in range(3 * n)]
        assert orders == [view_order(n, 7, "rec", v) for v in range(3 * n)]  # reproducible for a seed
        assert orders[0] == response_order(n, sample_seed(7, "rec", 0), True)  # pass 0: scoring's sample 0
        for c in range(3):
            cycle = orders[c * n:(c + 1) * n]
            assert all(a != b for a, b in zip(cycle, cycle[1:]))  # consecutive passes differ
            for i in range(n):  # every response shown once in every position per cycle
                assert sorted(o.index(i) for o in cycle) == list(range(n))
    assert {tuple(view_order(4, s, "rec", 0)) for s in range(8)} != {view_order(4, 0, "rec", 0)}  # the seed matters
    assert [view_order(3, 7, "rec", v, shuffle=False) for v in range(4)] == [(0, 1, 2)] * 4


def test_pass_rows_show_each_record_in_its_pass_order(tiny_engine):
    recs = [three("a", 0), three("b", 1), three("c", 2), two(1)]
    rows = [p.to_row() for p in rl_prompts(recs, T, tiny_engine.layout, seed=5)]
    data = pass_rows(rows, T, tiny_engine.layout, passes=3, seed=5)
    assert data == pass_rows(rows, T, tiny_engine.layout, passes=3, seed=5) and len(data) == 3 * len(recs)
    assert all("source" not in row for row in data)  # the dataset holds plain columns only
    by_id = {r.id: r for r in recs}
    for i, row in enumerate(data):
        assert row["view"] == i // len(recs)  # pass v of the data is pass v of the run
        rec = by_id[row["record_id"]]
        assert tuple(row["order"]) == view_order(len(rec.responses), 5, rec.id, row["view"])
        shown = [row["prompt"].index(f"[The Begin of Response {j + 1}]\n{rec.responses[k]}\n[The End") for j, k in enumerate(row["order"])]
        assert shown == sorted(shown)  # the text shows the responses in exactly that order
    for rid, rec in by_id.items():
        orders = [tuple(r["order"]) for r in data if r["record_id"] == rid][: len(rec.responses)]
        assert len(set(orders)) == len(orders)  # within a cycle of n passes, each shows the record in another order


def test_the_reward_reads_the_order_each_completion_was_shown(tiny_engine):
    """TRL hands the reward each row's columns beside its completion: the same score line is right for
    the pass that showed the label where it scores it, and wrong for a pass that showed it elsewhere."""
    rows = [p.to_row() for p in rl_prompts([three("a", 2)], T, tiny_engine.layout, seed=1)]
    data = pass_rows(rows, T, tiny_engine.layout, passes=3, seed=1)
    first = data[0]
    at = first["order"].index(2)  # where pass 0 shows the labelled best
    line = "Scores: \\boxed{%s}" % ", ".join("9" if j == at else "2" for j in range(3))
    completions = [" c\nAnalysis: a\n" + line] * len(data)
    columns = {k: [row[k] for row in data] for k in ("prefix", "order", "label", "record_id", "view")}
    got = RuleReward(T)([row["prompt"] for row in data], completions, **columns)
    assert got == [1.0 if row["order"].index(2) == at else -1.0 for row in data]
    assert got[0] == 1.0 and -1.0 in got  # the passes differ, so the same text is not right in all of them


def test_passes_needed_cover_the_steps():
    rl = load_settings("rl", None, {"steps": 30, "batch": 8, "group": 4})
    assert passes_needed(rl, 20) == 3  # 30 steps x 2 prompts = 60 prompts = 3 passes over 20 records
    assert passes_needed(rl, 20, world=2) == 6
    assert passes_needed(rl, 500) == 1
    assert passes_needed(load_settings("rl", None, {"epochs": 2.5}), 20) == 3


@pytest.mark.slow
def test_trl_reads_the_passes_in_order_with_its_shuffle_off(tiny_engine):
    """`train_grpo` turns TRL's shuffle off; its sampler then walks the rows as `pass_rows` laid them out."""
    from trl.trainer.utils import RepeatSampler

    rows = [p.to_row() for p in rl_prompts([three("a", 0), three("b", 1)], T, tiny_engine.layout, seed=0)]
    data = pass_rows(rows, T, tiny_engine.layout, passes=3, seed=0)
    idx = list(RepeatSampler(data, mini_repeat_count=4, batch_size=2, repeat_count=1, shuffle=False))
    assert [data[i]["view"] for i in idx[::4]] == [0, 0, 1, 1, 2, 2]
