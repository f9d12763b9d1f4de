"""Checker-written trajectories (examples/constraints_teacher.py), the control run of issue 17: each one is
what a right judge writes for the record in that response order, through grm's own prompt layout, parser
and rule, and `grm train rft --accepted` reads the file as it reads rejective sampling's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLES, load_example

from grm_cli.core.prompt import load_template, render
from grm_cli.core.records import record_from_dict
from grm_cli.core.rules import is_correct
from grm_cli.scoring.plan import judged_scores
from grm_cli.train.sft import balance_positions, read_rft_examples

teacher = load_example("constraints_teacher")
TRAIN = EXAMPLES / "constraints_train.jsonl"
ROWS = [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "teacher.jsonl"
    count = teacher.write_teacher(TRAIN, out, orders=2, seed=0)
    return out, count, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_every_trajectory_is_right_by_the_one_parser_and_rule_on_the_prompt_grm_renders(written):
    _, count, lines = written
    tmpl = load_template("compact")
    assert len(lines) == len(ROWS) == 360 and count == sum(len(line["examples"]) for line in lines)
    for obj, line in zip(ROWS, lines):
        rec = record_from_dict(obj)
        assert line["id"] == rec.id and line["status"] == "kept" and 1 <= len(line["examples"]) <= 2
        orders = [tuple(ex["order"]) for ex in line["examples"]]
        assert len(set(orders)) == len(orders)  # no example twice
        for ex in line["examples"]:
            order = tuple(ex["order"])
            assert ex["prompt"] == list(render(tmpl, rec, order).messages)  # the prompt llama.cpp is asked at scoring
            text = ex["completion"][0]["content"]
            assert text.startswith(tmpl.principles_label)  # the pre-filled start of every sample, as a sample's text keeps it
            _, scores = judged_scores(tmpl, text, order)
            assert scores == tuple(ex["scores"]) and is_correct(scores, rec.preferred)
            assert scores[rec.preferred] == teacher.FOLLOWS and sorted(scores).count(teacher.BREAKS) == len(scores) - 1
            shown_best = order.index(rec.preferred) + 1
            assert f"Response {shown_best} follows it." in text and text.count("follows it.") == 1
            assert text.count("breaks it (") == len(order) - 1
    # two responses have only two orders, so pairs get both: the best is shown first as often as second there
    pairs = [(ex, obj["preferred"]) for line, obj in zip(lines, ROWS) if len(obj["responses"]) == 2 for ex in line["examples"]]
    firsts = sum(ex["order"][0] == best for ex, best in pairs)
    assert pairs and 0.4 * len(pairs) <= firsts <= 0.6 * len(pairs)


def test_the_criterion_is_the_prompts_constraint_and_the_reasons_are_what_the_checker_sees():
    tmpl = load_template("compact")
    by_kind = {}
    for obj in ROWS:
        by_kind.setdefault(obj["constraint"]["kind"], obj)
    assert set(by_kind) == set(teacher.CHECKERS)  # every kind has a reason
    for kind, obj in by_kind.items():
        c = obj["constraint"]
        text = teacher.trajectory(tmpl, obj, tuple(range(len(obj["responses"]))))
        wording = c["wording"].replace("{arg}", str(c["arg"]))
        assert wording in obj["prompt"] and text.splitlines()[0] == f"{tmpl.principles_label} {wording}"
        assert "{arg}" not in text
    words = next(o for o in ROWS if o["constraint"]["kind"] == "max_words")
    long = next(r for r in words["responses"] if not teacher.CHECKERS["max_words"](r, words["constraint"]["arg"]))
    assert teacher.why_broken("max_words", words["constraint"]["arg"], long) == f"{len(long.split())} words"
    assert teacher.why_broken("bullets", 3, "- one\n* two\nthree\n  - four") == "3 bullets"
    assert teacher.why_broken("include_word", "kettle", "no such word") == 'no "kettle"'
    with pytest.raises(ValueError, match="unknown constraint kind"):
        teacher.why_broken("rhymes", None, "x")


def test_grm_train_reads_the_file_as_rejective_sampling_data(written):
    path, count, lines = written
    examples = read_rft_examples(path)
    assert len(examples) == count
    assert all(ex.kind == "grm" and ex.best_shown is not None for ex in examples)
    kept, dropped = balance_positions(examples, seed=0)  # positions are known, so --balance-positions applies too
    assert len(kept) + dropped == count and kept
    assert len({sum(ex.best_shown == j for ex in kept) for j in range(4)}) == 1  # as many with the best shown in each place


def test_same_seed_same_file_and_a_record_without_a_constraint_is_a_clear_error(written, tmp_path):
    path, _, _ = written
    again = tmp_path / "again.jsonl"
    teacher.write_teacher(TRAIN, again, orders=2, seed=0)
    assert again.read_bytes() == path.read_bytes()
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"prompt": "hi", "chosen": "a", "rejected": "b"}) + "\n", encoding="utf-8")
    p = subprocess.run([sys.executable, str(EXAMPLES / "constraints_teacher.py"), str(bad), "-o", str(tmp_path / "out.jsonl")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"{bad}:2: expected a constraints record" in p.stderr
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written


def test_audit_tells_a_wrong_check_from_scores_that_ignore_the_analysis(tmp_path):
    """The audit reads a judge's stored samples: checker-written ones are all right and agree with
    themselves; a flipped verdict is a wrong analysis, a flipped box is disagreement with the analysis."""
    from grm_cli.scoring.plan import parse_sample

    tmpl = load_template("compact")
    heldout = EXAMPLES / "constraints_heldout.jsonl"
    objs = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines()[:12]]
    rows = []
    for obj in objs:
        order = tuple(reversed(range(len(obj["responses"]))))
        j = parse_sample(tmpl, teacher.trajectory(tmpl, obj, order), len(order))
        rows.append({"id": obj["id"], "samples": [{"order": list(order), "critique": j.critique, "scores_shown": list(j.scores)}]})
    first = rows[0]["samples"][0]
    rows.append({"id": objs[0]["id"], "samples": [{**first, "scores_shown": first["scores_shown"][::-1]},  # box against its own analysis
                                                  {**first, "critique": first["critique"].replace("follows it", "breaks it (x)")},  # no response follows
                                                  {**first, "critique": "Response 1 follows it."}]})  # not every response judged
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = teacher.audit(heldout, results)
    assert got["samples"] == 15 and got["analysed"] == 14
    assert got["analysis_right"] == 13 and got["scores_agree"] == 12 and got["right_and_agree"] == 12
    assert all(0.0 <= v <= 1.0 for v in got["analysis_right_by_kind"].values())
