"""Principles lab (paper §2.2): the three modes' prompts, the label filter, provenance, the oracle flag,
the held-out split, and the Table-1 comparison end to end with the real small model."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLES, grm, write_jsonl

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import load_template, render
from grm_cli.core.records import Record, Turn, label_key
from grm_cli.core.rules import label_of
from grm_cli.core.voting import vote
from grm_cli.errors import InputError
from grm_cli.io.principles_file import principles_entry
from grm_cli.principles.filtering import FILTER_RULE, filter_result, split_for_filter
from grm_cli.scoring.principles import principles_lookup
from grm_cli.scoring.results import GivenPrinciples, SampleResult, ScoreResult
from grm_cli.scoring.settings import ScoreSettings, run_signature


def rec(rid="r1", query="Which is larger, 7 or 9?", responses=("9", "7"), preferred=0, label=None) -> Record:
    return Record(id=rid, context=(Turn("user", query),), responses=tuple(responses), preferred=preferred, label=label)


def user_text(p) -> str:
    return p.messages[0]["content"]


# -- the three modes: what the model is asked, and what its answer is pre-filled with -------------
def test_mode_self_asks_for_principles_and_starts_the_answer_on_them():
    t = load_template("pointwise")
    p = render(t, rec())
    assert "state potential other specific criteria to the query, the weights" in user_text(p)
    assert "Output with three lines\nSpecific Criteria:" in user_text(p)
    assert p.assistant_prefix == "Specific Criteria:"


def test_mode_given_keeps_the_instruction_and_prefills_the_principles():
    t = load_template("pointwise")
    p = render(t, rec(), principles="Correctness (Weight: 80%)\nBrevity (Weight: 20%)", mode="given")
    assert user_text(p) == user_text(render(t, rec()))
    assert p.assistant_prefix == "Specific Criteria: Correctness (Weight: 80%)\nBrevity (Weight: 20%)\nAnalysis:"


@pytest.mark.parametrize("name", ["pointwise", "single", "judge"])
def test_mode_none_asks_for_no_principles_and_starts_on_the_analysis(name):
    t = load_template(name)
    r = rec(responses=("9",), preferred=None, label=1) if name == "single" else rec()
    asked = user_text(render(t, r, mode="none"))
    assert "Specific Criteria" not in asked and "specific criteria" not in asked.lower()
    assert "Output with two lines\nAnalysis:" in asked
    assert "#### Conversation Context ####" in asked and "\\boxed" in asked  # the rest of the layout stays
    assert render(t, r, mode="none").assistant_prefix == "Analysis:"


def test_mode_none_needs_a_template_variant(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("user: |-\n  Score each.\n  {context}\n  {responses}\n")
    t = load_template(str(bare))
    with pytest.raises(InputError, match="no principles-free variant"):
        render(t, rec(), mode="none")
    broken = tmp_path / "broken.yaml"
    broken.write_text('user: |-\n  Score each.\n  {context}\n  {responses}\nwithout_principles:\n  - find: "not in the text"\n    replace: ""\n')
    with pytest.raises(InputError, match="does not occur"):
        load_template(str(broken))


def test_modes_are_exclusive():
    t = load_template("pointwise")
    with pytest.raises(ValueError):
        render(t, rec(), mode="given")
    with pytest.raises(ValueError):
        render(t, rec(), principles="x", mode="none")
    with pytest.raises(ValueError):
        ScoreSettings(principles="given")


def test_run_signature_names_the_mode_only_when_it_is_not_the_default():
    assert "principles" not in run_signature("m", "pointwise", ScoreSettings())  # older result files resume
    assert run_signature("m", "pointwise", ScoreSettings(principles="none"))["principles"] == "none"
    assert run_signature("m", "pointwise", ScoreSettings(principles_from="filtered.jsonl"))["principles"] == "given:filtered.jsonl"


# -- the filter rule on hand-made generations ------------------------------------------------------
def sample(i, scores, principles="Be exact (Weight: 100%)") -> SampleResult:
    j = Judgment(text="", scores=tuple(scores) if scores else None, principles=principles, error=None if scores else "unparsed")
    return SampleResult(i, i, (0, 1), j, tuple(scores) if scores else None, False, 10, 10, 0.1)


def result_of(r: Record, samples) -> ScoreResult:
    return ScoreResult(r, tuple(samples), vote([s.scores for s in samples], len(r.responses)), "m", "pointwise", ScoreSettings(k=len(samples)))


def test_filter_keeps_only_runs_that_single_out_the_label():
    r = rec(preferred=1)
    samples = [
        sample(0, (8, 3), "wrong"),  # prefers response 0: wrong
        sample(1, (5, 5), "tie"),  # a tie is wrong (Eq. 10)
        sample(2, None, "unparsed"),  # never right
        sample(3, (4, 6), "narrow"),  # right, margin 2
        sample(4, (2, 9), "wide"),  # right, margin 7: chosen
        sample(5, (1, 9), None),  # right but stated no principles: nothing to keep
    ]
    f = filter_result(result_of(r, samples), {"model": "m"})
    assert f.agreed == 2 and f.runs == 6
    assert f.principles == "wide"
    assert [c["principles"] for c in f.candidates] == ["wide", "narrow"]
    assert [c["margin"] for c in f.candidates] == [7, 2]


def test_filter_with_no_agreeing_run_keeps_nothing_but_records_the_attempt():
    f = filter_result(result_of(rec(preferred=0), [sample(0, (3, 8)), sample(1, (5, 5))]), {})
    assert f.principles is None and f.agreed == 0 and f.runs == 2
    line = f.to_json()
    assert line["principles"] is None and line["candidates"] == []
    entry = principles_entry(line)  # such a line reads back (and means: fall back to the model's own)
    assert entry["principles"] is None
    assert principles_lookup([entry], "f.jsonl")(rec(preferred=0)) is None


def test_filter_on_a_single_response_uses_its_0_1_label():
    r = rec(responses=("9",), preferred=None, label=1)
    f = filter_result(result_of(r, [sample(0, (0,), "lenient"), sample(1, (1,), "exact")]), {})
    assert f.principles == "exact" and f.agreed == 1


def test_hand_edited_filter_counts_are_checked():
    with pytest.raises(InputError, match='"agreed": expected a count'):
        principles_entry({"id": "a", "principles": "x", "agreed": "two", "runs": 4}, "f.jsonl", 3)


def test_a_single_entry_for_every_record_keeps_its_provenance():
    entry = principles_entry({"principles": "Be exact", "provenance": {"model": "A"}})
    given = principles_lookup([entry], "p.jsonl")(rec())
    assert given.text == "Be exact" and given.source == {"file": "p.jsonl", "model": "A"}


def test_filter_needs_labels():
    with pytest.raises(InputError, match='"preferred"'):
        label_of(rec(preferred=None))
    with pytest.raises(InputError, match='"label"'):
        label_of(rec(responses=("9",), preferred=None))


def test_filtered_lines_carry_provenance_and_flag_the_oracle_setting():
    r = rec(rid="q1", preferred=1)
    prov = {"model": "A", "template": "pointwise", "data": "train.jsonl", "filter": {"rule": FILTER_RULE, "runs": 2}}
    line = filter_result(result_of(r, [sample(0, (2, 9), "kept")]), prov).to_json()
    assert line["provenance"] == prov and line["filtered_on"] == label_key(r)
    lookup = principles_lookup([principles_entry(line)], "filtered.jsonl")
    given = lookup(r)
    assert given.text == "kept" and given.source["model"] == "A" and given.source["file"] == "filtered.jsonl"
    assert given.source["agreed"] == 1 and given.source["runs"] == 1
    assert given.is_oracle_for(r)  # filtered on this very record's label
    other = rec(rid="q2", responses=("nine", "seven"), preferred=0)  # same query, other pair: held out
    assert lookup(other).text == "kept" and not lookup(other).is_oracle_for(other)
    scored = ScoreResult(r, (sample(0, (2, 9)),), vote([(2, 9)], 2), "B", "pointwise", ScoreSettings(), given)
    out = scored.to_json()
    assert out["oracle"] is True and out["principles_mode"] == "given"
    assert out["principles_source"]["model"] == "A" and out["given_principles"] == "kept"
    assert GivenPrinciples("x", {"file": "p.txt"}).is_oracle_for(r) is False


def test_lookup_prefers_the_query_entry_that_agreed_most():
    entries = [
        principles_entry({"id": "a", "prompt": "Q", "principles": "weak", "agreed": 1, "runs": 4}),
        principles_entry({"id": "b", "prompt": "Q", "principles": "strong", "agreed": 3, "runs": 4}),
        principles_entry({"id": "c", "prompt": "Q", "principles": None, "agreed": 0, "runs": 4}),
    ]
    lookup = principles_lookup(entries, "f")
    assert lookup(rec(rid="z", query="Q")).text == "strong"
    assert lookup(rec(rid="a", query="Q")).text == "weak"  # an id match wins
    # ids repeat across files ("1", "2", ...): an id whose entry names another prompt does not match
    other = principles_lookup([principles_entry({"id": "1", "prompt": "Q", "principles": "for Q"})], "f")
    with pytest.raises(InputError, match="no principles for record id '1'"):
        other(rec(rid="1", query="a different query"))
    with pytest.raises(InputError, match="no principles for record id"):
        lookup(rec(rid="y", query="another query"))


def test_held_out_split_never_puts_a_record_on_both_sides():
    rows = [rec(rid=f"{q}-{i}", query=f"query {q}") for q in range(5) for i in range(q + 1)]  # groups of 1..5
    split = split_for_filter(rows, 0.5, seed=3)
    f_ids, h_ids = {r.id for r in split.filter_side}, {r.id for r in split.held_out}
    assert not f_ids & h_ids
    assert {r.id for r in split.left_out} == {"0-0"}  # the query seen once
    for q in range(1, 5):  # every other query is on both sides
        assert any(i.startswith(f"{q}-") for i in f_ids) and any(i.startswith(f"{q}-") for i in h_ids)
    assert split == split_for_filter(rows, 0.5, seed=3)  # seeded
    with pytest.raises(InputError, match="--filter-split"):
        split_for_filter(rows, 1.0)


# -- end to end ------------------------------------------------------------------------------------
def test_filter_then_score_with_the_filtered_principles(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [json.loads(x) for x in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()[:3]])
    out = tmp_path / "filtered.jsonl"
    p = grm("principles", str(data), "--filter", "--filter-samples", "3", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "12", "-o", str(out))
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and all(x["runs"] == 3 and 0 <= x["agreed"] <= 3 for x in lines)
    assert all(x["provenance"]["filter"]["runs"] == 3 and x["provenance"]["data"] == "d.jsonl" for x in lines)
    assert "kept principles for" in p.stderr
    s = grm("score", str(data), "--principles", str(out), "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8", "--json")
    assert s.returncode in (0, 4), s.stderr
    results = [json.loads(x) for x in s.stdout.splitlines()]
    for line, res in zip(lines, results):
        if line["principles"]:
            assert res["principles_mode"] == "given" and res["oracle"] is True
            assert res["principles_source"]["filtered_on"] == line["filtered_on"]
        else:
            assert res["principles_mode"] == "self" and not res["oracle"]
    if any(x["principles"] for x in lines):
        assert "oracle setting" in s.stderr


def test_filter_needs_jsonl_records(tiny_model):
    p = grm("principles", str(EXAMPLES / "prompt.txt"), "--filter", "--model", str(tiny_model))
    assert p.returncode == 2 and "--filter needs labelled records as JSONL" in p.stderr


def test_filter_refuses_unlabelled_records(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "u.jsonl", [{"prompt": "q", "responses": ["a", "b"]}])
    p = grm("principles", str(data), "--filter", "--model", str(tiny_model))
    assert p.returncode == 2 and "u.jsonl:1" in p.stderr and '"preferred"' in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_table1_comparison_end_to_end_with_smollm2(tmp_path):
    """none / self / filtered on the same held-out records and seeds, with the real small model."""
    out = tmp_path / "cmp.jsonl"
    args = ["eval", str(EXAMPLES / "hhh_alignment.jsonl"), "--limit", "4", "--principles", "none,self,filtered", "--filter-split", "0.5",
            "--filter-samples", "2", "--max-tokens", "16", "--ctx", "4096", "-o", str(out)]
    p = grm(*args, "--json")
    assert p.returncode == 0, p.stderr
    summaries = json.loads(p.stdout)
    assert [s["grm_eval"]["name"] for s in summaries] == ["none", "self", "filtered"]
    counts = {s["grm_eval"]["records"] for s in summaries}
    assert len(counts) == 1  # the same held-out records in every mode
    diag = [s["grm_eval"]["diagnostics"] for s in summaries]
    assert diag[0]["principles_mode"] == "none" and diag[1]["principles_mode"] == "self"
    assert all(d["oracle_rate"] == 0.0 for d in diag)  # held out: no record was filtered on itself
    assert all(d["parse_failure_rate"] == 0.0 for d in diag)
    for name in ("none", "self", "filtered", "principles"):
        assert (tmp_path / f"cmp.{name}.jsonl").exists()
    none_run = [json.loads(x) for x in (tmp_path / "cmp.none.jsonl").read_text().splitlines()]
    assert all(r["run"]["principles"] == "none" and r["samples"][0]["principles"] is None for r in none_run)
    # The table, and a rerun that resumes every file instead of generating again.
    t = grm(*args)
    assert t.returncode == 0, t.stderr
    assert "none" in t.stdout and "filtered" in t.stdout and "principles" in t.stdout
    assert t.stderr.count("skipping") >= 3


def test_oracle_comparison_is_flagged(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [json.loads(x) for x in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()[:4]])
    p = grm("eval", str(data), "--principles", "self,filtered", "--filter-samples", "4", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8")
    assert p.returncode == 0, p.stderr
    assert "kept principles for 0 of" not in p.stderr  # the tiny model's noise agrees with some labels (seeded)
    assert "ORACLE" in p.stderr and "not a held-out result" in p.stderr
    assert "given" in p.stdout and "ORACLE" in p.stdout  # the table's principles row
