"""Every judge protocol through grm's machinery on the tiny random model (issue 28, "done when"): `grm score
--protocol P -k 2` parses every sample; voting, adaptive stopping, expected scores, `grm eval --benchmark`,
`grm render` and `grm serve` with a protocol other than the default; the errors a protocol's needs make.

The tiny model writes noise, so every verdict here is forced: these tests show that the machinery carries
each protocol end to end, not what a real judge concludes (README says what needs the weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import grm, write_jsonl

from grm_cli.core.protocols import get_protocol, protocol_names
from grm_cli.core.records import record_from_dict
from grm_cli.scoring.job import ScoreJob
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.settings import ScoreSettings

FIX = Path(__file__).parent / "fixtures"
RUBRIC = {"criteria": "Is the answer correct and helpful?", "score1_description": "Wrong.", "score2_description": "Mostly wrong.",
          "score3_description": "Partly right.", "score4_description": "Right with slips.", "score5_description": "Right and clear."}
PAIR = {"id": "p1", "prompt": "What is 2 + 2? Answer with {braces} kept.", "chosen": "4", "rejected": "5", "rubric": RUBRIC, "reference": "4"}
PAIRS = [PAIR, {**PAIR, "id": "p2", "prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."}]


def layout(name: str):
    p = get_protocol(name)
    return p.template if name == "deepseek-grm" else p


@pytest.mark.parametrize("name", protocol_names())
def test_every_sample_parses_for_every_protocol(tiny_engine, name):
    """k = 2 on a pair: every sample has a verdict, scores in the record's order, and a pairwise protocol
    shows both orders."""
    recs = [record_from_dict(r, "pairs.jsonl", i) for i, r in enumerate(PAIRS, start=1)]
    settings = ScoreSettings(k=2, max_tokens=8)
    ready = ScoreJob(layout(name), settings).prepare(recs, tiny_engine)
    results = list(score_records(ready, tiny_engine, layout(name), settings))
    proto = get_protocol(name)
    for r in results:
        assert r.verdict.unparsed == 0 and r.verdict.votes == 2, [s.judgment.error for s in r.samples]
        assert all(s.scores is not None and len(s.scores) == 2 for s in r.samples)
        line = r.to_json()
        assert (line["run"].get("protocol") == name) == (name != "deepseek-grm")
        if proto.shape == "pairwise":
            assert {tuple(s.order) for s in r.samples} == {(0, 1), (1, 0)}
            for s in r.samples:
                assert s.judgment.verdict in proto.candidates(2)
                assert sorted(s.scores) in ([0, 1], [0, 0])
        if proto.shape == "absolute":
            assert all(len(s.calls) == 2 for s in r.samples)  # one call per response
            lo, hi = proto.for_record(r.record).scale
            assert all(lo <= x <= hi for s in r.samples for x in s.scores)


def test_grm_score_with_a_protocol_from_the_command_line(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    p = grm("score", str(data), "--model", str(tiny_model), "--protocol", "prometheus-relative", "-k", "2", "--max-tokens", "8", "--json", "--no-cache")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert [x["run"]["protocol"] for x in lines] == ["prometheus-relative"] * 2
    assert all(s["verdict"] in ("A", "B") and s["forced_tail"] for x in lines for s in x["samples"])
    assert all("[RESULT]" in s["text"] for x in lines for s in x["samples"])


def test_voting_sums_picks_across_both_orders(tiny_engine):
    """k = 4 with a pairwise protocol: each sample is one vote; the totals are the picks per response."""
    rec = record_from_dict(PAIR)
    (r,) = score_records([rec], tiny_engine, layout("skywork-critic"), ScoreSettings(k=4, max_tokens=8))
    picks = [s.scores for s in r.samples]
    assert r.verdict.totals == tuple(sum(p[i] for p in picks) for i in range(2)) and sum(r.verdict.totals) == 4
    assert [s.order for s in r.samples].count((0, 1)) == 2


def test_adaptive_voting_with_a_pairwise_protocol(tiny_engine):
    """The swing of a pick is 1: exact stopping after the first round of 4 when one response has 3 more votes
    than the other cannot happen early unless the lead exceeds what the remaining samples can overturn."""
    recs = [record_from_dict(r, "pairs.jsonl", i) for i, r in enumerate(PAIRS, start=1)]
    settings = ScoreSettings(k=8, max_tokens=8, adaptive="exact")
    results = list(score_records(recs, tiny_engine, layout("mt-bench-pairwise"), settings))
    for r in results:
        used = len(r.samples)
        totals = r.verdict.totals
        lead = abs(totals[0] - totals[1])
        if used < 8:  # stopped early: the lead is more than the samples left could move (1 each)
            assert r.stopped_by == "exact" and lead > 8 - used
        assert r.to_json()["samples_used"] == used


def test_expected_scores_of_a_pairwise_and_an_absolute_protocol(tiny_engine):
    from grm_cli.engine.probe import ScoreProbe

    probe = ScoreProbe(tiny_engine, 1, 10, n_ctx=8192)
    rec = record_from_dict(PAIR)
    settings = ScoreSettings(k=2, max_tokens=8, score_mode="expected")
    (pair,) = score_records([rec], tiny_engine, layout("prometheus-relative"), settings, probe=probe)
    for s in pair.samples:
        assert s.expected is not None and all(0.0 <= x <= 1.0 for x in s.expected) and sum(s.expected) <= 1.0 + 1e-9
    assert pair.verdict.totals == pytest.approx(tuple(sum(s.expected[i] for s in pair.samples) for i in range(2)))
    (absolute,) = score_records([rec], tiny_engine, layout("prometheus-absolute"), settings, probe=probe)
    for s in absolute.samples:
        assert s.expected is not None and all(1.0 <= x <= 5.0 for x in s.expected)


def test_eval_benchmark_with_a_protocol(tiny_model):
    p = grm("eval", str(FIX / "benchmarks" / "rewardbench.jsonl"), "--benchmark", "rewardbench", "--model", str(tiny_model),
            "--protocol", "skywork-critic", "-k", "2", "--max-tokens", "8", "--json", "--no-cache", "--limit", "4")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["grm_eval"]["records"] >= 4 and out["benchmark"]["name"] == "rewardbench" and out["template"] == "skywork-critic"


def test_render_prints_exactly_the_official_messages(tmp_path):
    """`grm render --json` on each fixture record gives the messages the official code produced."""
    for folder in sorted((FIX / "protocols").iterdir()):
        if not folder.is_dir():
            continue
        cases = [json.loads(x) for x in (folder / "renders.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
        data = write_jsonl(tmp_path / f"{folder.name}.jsonl", [c["record"] for c in cases])
        p = grm("render", str(data), "--protocol", folder.name, "--no-shuffle", "--json")
        assert p.returncode == 0, (folder.name, p.stderr)
        got = [json.loads(x) for x in p.stdout.splitlines()]
        for case, line in zip(cases, got):
            shown = [c for c in line["calls"] if c["shown"] == case["shown"]]
            if shown:  # the first sample's calls: absolute protocols show each response in turn
                assert shown[0]["messages"] == case["messages"], (folder.name, case.get("how"))


def test_protocols_lists_every_judge_with_its_source():
    p = grm("protocols", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert set(rows) >= {"deepseek-grm", "prometheus-absolute", "prometheus-relative", "flow-judge", "selene-absolute", "selene-pairwise",
                         "skywork-critic", "mt-bench-single", "mt-bench-pairwise", "auto-j-pairwise"}
    assert all(r["source"] and r["licence"] for r in rows.values())


def test_each_shipped_judge_alias_names_its_protocol():
    from grm_cli.models.registry import load_registry

    aliases = load_registry()
    assert {a: aliases[a].protocol for a in ("prometheus-7b-v2", "flow-judge-v0.1", "selene-1-mini", "skywork-critic-8b")} == {
        "prometheus-7b-v2": "prometheus-relative", "flow-judge-v0.1": "flow-judge", "selene-1-mini": "selene-pairwise", "skywork-critic-8b": "skywork-critic"}
    assert aliases["smollm2-135m"].protocol is None  # the default protocol


def test_a_users_alias_file_may_name_a_protocol(tmp_path, monkeypatch):
    from grm_cli.models.registry import alias_protocol

    (tmp_path / "models.yaml").write_text("my-judge:\n  source: hf://me/judge/judge.gguf\n  protocol: mt-bench-single\n"
                                          "bad-judge:\n  source: hf://me/judge/judge.gguf\n  protocol: nope\n")
    monkeypatch.setenv("GRM_MODELS", str(tmp_path / "models.yaml"))
    p = grm("render", "-", "--model", "my-judge", stdin=json.dumps(PAIR) + "\n")
    assert p.returncode != 0 and "nope" in p.stderr and "Traceback" not in p.stderr  # the bad alias is named
    (tmp_path / "models.yaml").write_text("my-judge:\n  source: hf://me/judge/judge.gguf\n  protocol: mt-bench-single\n")
    assert alias_protocol("my-judge") == "mt-bench-single"
    p = grm("render", "-", "--model", "my-judge", "--json", stdin=json.dumps(PAIR) + "\n")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["protocol"] == "mt-bench-single"


@pytest.mark.parametrize("args, row, words", [
    (["--protocol", "prometheus-absolute"], {"prompt": "q", "responses": ["a", "b"]}, ['d.jsonl:1', 'missing field "rubric"']),
    (["--protocol", "skywork-critic"], {"prompt": "q", "responses": ["a", "b", "c"]}, ['d.jsonl:1', "exactly 2 responses"]),
    (["--protocol", "mt-bench-single", "--template", "judge"], {"prompt": "q", "responses": ["a", "b"]}, ["--template"]),
    (["--protocol", "flow-judge", "--principles", "none"], {"prompt": "q", "responses": ["a", "b"], "rubric": "x"}, ["principles"]),
    (["--protocol", "nope"], {"prompt": "q", "responses": ["a", "b"]}, ["unknown protocol", "skywork-critic"]),
    (["--protocol", "prometheus-relative", "--rubric", "MISSING"], {"prompt": "q", "responses": ["a", "b"]}, ["--rubric", "cannot read"]),
])
def test_what_a_protocol_cannot_judge_is_a_clear_error_before_generation(tiny_model, tmp_path, args, row, words):
    data = write_jsonl(tmp_path / "d.jsonl", [row])
    p = grm("score", str(data), "--model", str(tmp_path / "no-model-is-loaded.gguf"), *args)
    assert p.returncode == 2, p.stderr
    assert all(w in p.stderr for w in words) and "Traceback" not in p.stderr, p.stderr


def test_rubric_file_applies_to_every_record(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("criteria: Is it correct?\nscore1_description: No.\nscore2_description: Barely.\nscore3_description: Partly.\n"
                      "score4_description: Mostly.\nscore5_description: Fully.\n")
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "responses": ["a", "b"]}])
    p = grm("render", str(data), "--protocol", "prometheus-absolute", "--rubric", str(rubric), "--json")
    assert p.returncode == 0, p.stderr
    user = json.loads(p.stdout)["calls"][0]["messages"][-1]["content"]
    assert "[Is it correct?]\nScore 1: No.\nScore 2: Barely." in user


def test_resuming_with_another_protocol_is_refused(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", PAIRS)
    out = tmp_path / "out.jsonl"
    base = ["score", str(data), "--model", str(tiny_model), "-k", "2", "--max-tokens", "8", "-o", str(out), "--no-cache"]
    assert grm(*base, "--protocol", "skywork-critic").returncode == 0
    p = grm(*base, "--protocol", "mt-bench-pairwise")
    assert p.returncode == 2 and "protocol" in p.stderr, p.stderr


@pytest.mark.slow  # a server process starts and warms up
def test_serve_scores_in_a_protocol(tiny_model):
    from test_serve import call, server

    with server(tiny_model, "--max-tokens", "8", "--protocol", "selene-pairwise", "-k", "2") as url:
        status, body, _ = call(url, "/score", {"prompt": "2+2?", "responses": ["4", "5"]})
        assert status == 200, body
        (result,) = body["results"]
        assert result["run"]["protocol"] == "selene-pairwise" and all(s["verdict"] in ("A", "B") for s in result["samples"])
        status, body, _ = call(url, "/score", {"prompt": "2+2?", "responses": ["4", "5", "6"]})
        assert status == 400 and "exactly 2 responses" in body["error"]


def test_a_gguf_without_a_chat_template_gets_the_protocols_own(tmp_path):
    """Auto-J's weights carry no chat template; its protocol brings the Llama-2 layout its input assumes,
    and a GGUF's own template always wins."""
    from tiny_gguf import write_tiny_gguf

    bare = write_tiny_gguf(tmp_path / "bare.gguf", chat_template="")
    data = write_jsonl(tmp_path / "d.jsonl", [PAIR])
    p = grm("render", str(data), "--protocol", "auto-j-pairwise", "--model", str(bare), "--chat", "--json", "--no-shuffle")
    assert p.returncode == 0, p.stderr
    text = json.loads(p.stdout)["calls"][0]["text"]
    assert text.index("[INST] You are assessing two submitted responses") < 16 and text.endswith(" [/INST]")  # BOS, then Llama-2's turn
    p = grm("score", str(data), "--protocol", "auto-j-pairwise", "--model", str(bare), "-k", "1", "--max-tokens", "8", "--json", "--no-cache")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["samples"][0]["verdict"] in ("Response 1", "Response 2", "Tie")


def test_the_in_process_rl_judge_speaks_a_protocol(tiny_engine):
    """The RL hooks' judge with an absolute protocol: each completion judged alone, rewards on its scale."""
    from grm_cli.integrations.judge import LocalJudge

    judge = LocalJudge(tiny_engine, protocol="mt-bench-single", k=2, max_tokens=8)
    assert judge.score_range == (1, 10)
    rewards = judge.rewards(["What is 2+2?"] * 3, ["4", "5", "four"])
    assert len(rewards) == 3 and all(1 <= r <= 10 for r in rewards)  # the mean of two 1-10 ratings
    pair = LocalJudge(tiny_engine, protocol="skywork-critic", k=2, max_tokens=8)
    picks = pair.rewards(["Name a colour."] * 2, ["Blue.", "Seven."])
    assert all(0 <= r <= 1 for r in picks) and sum(picks) == 1.0  # each sample picks one of the two (no tie in this protocol)
