"""The constraints task (examples/make_constraints.py): the committed files are exactly what the seeded
generator writes, train and held-out share no question and no constraint wording, and every label agrees
with the constraint's checker (the ground truth). If any of this broke, a held-out gain could be memory
or a wrong label rather than a judge that learned to check."""

from __future__ import annotations

import json
import re

from conftest import EXAMPLES, load_example

from grm_cli.core.prompt import load_template, render
from grm_cli.io.jsonl import read_records

gen = load_example("make_constraints")


def _rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (EXAMPLES / gen.FILES[split]).read_text(encoding="utf-8").splitlines()]


def test_committed_files_are_what_the_seeded_generator_writes(tmp_path):
    paths = gen.write(tmp_path, seed=0)
    for split, path in paths.items():
        assert path.read_bytes() == (EXAMPLES / gen.FILES[split]).read_bytes(), f"{split}: rerun python examples/make_constraints.py"
    assert gen.write(tmp_path / "again", seed=0)["heldout"].read_bytes() == paths["heldout"].read_bytes()  # deterministic
    assert gen.write(tmp_path / "other", seed=1)["heldout"].read_bytes() != paths["heldout"].read_bytes()  # the seed matters


def test_sizes_record_shapes_and_the_best_position_spread():
    train, held = _rows("train"), _rows("heldout")
    assert len(held) >= 200 and len(train) >= 200
    for rows in (train, held):
        assert {len(r["responses"]) for r in rows} == {2, 3, 4}
        assert {r["subset"] for r in rows} == set(gen.KINDS)
        for n in (2, 3, 4):
            at = [r["preferred"] for r in rows if len(r["responses"]) == n]
            counts = [at.count(p) for p in range(n)]
            assert max(counts) - min(counts) <= 1, f"best position not balanced for {n} responses: {counts}"
    size = sum((EXAMPLES / f).stat().st_size for f in gen.FILES.values())
    assert size < 600_000  # modest: a few hundred KB


def test_train_and_heldout_share_no_question_no_prompt_and_no_wording():
    train, held = _rows("train"), _rows("heldout")
    question = re.compile(r"^(.*?\?) ")
    qs = {s: {question.match(r["prompt"]).group(1) for r in rows} for s, rows in (("train", train), ("heldout", held))}
    assert not qs["train"] & qs["heldout"]
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    for rows in (train, held):
        assert len({r["prompt"] for r in rows}) == len(rows) and len({r["id"] for r in rows}) == len(rows)
    for kind in gen.KINDS:
        assert not set(gen.WORDINGS["train"][kind]) & set(gen.WORDINGS["heldout"][kind])
    # no held-out prompt matches any train wording, whatever value it names (and the other way round)
    def patterns(split):
        return [re.compile(re.escape(w).replace(re.escape("{arg}"), ".+?") + "$") for ws in gen.WORDINGS[split].values() for w in ws]
    for rows, own, other in ((held, "heldout", "train"), (train, "train", "heldout")):
        assert all(any(p.search(r["prompt"]) for p in patterns(own)) for r in rows)  # the patterns do match wordings
        pats = patterns(other)
        assert not [r["prompt"] for r in rows if any(p.search(r["prompt"]) for p in pats)]
    for table in (gen.PHRASES, gen.START_WORDS, gen.JSON_KEYS):
        assert not set(table["train"]) & set(table["heldout"])
    for r in held:
        assert r["constraint"]["wording"] in gen.WORDINGS["heldout"][r["subset"]]
        assert r["prompt"].endswith(r["constraint"]["wording"].format(arg=r["constraint"]["arg"]))


def test_every_best_response_passes_its_checker_and_every_other_fails():
    for rows in (_rows("train"), _rows("heldout")):
        for r in rows:
            c = r["constraint"]
            check = gen.CHECKERS[c["kind"]]
            verdicts = [check(text, c["arg"]) for text in r["responses"]]
            assert verdicts == [i == r["preferred"] for i in range(len(r["responses"]))], r["id"]
            assert len(set(r["responses"])) == len(r["responses"]), r["id"]


def test_checkers_on_hand_made_texts():
    assert gen.check_lowercase("all small, even 42.", None) and not gen.check_lowercase("One capital", None) and not gen.check_lowercase("42", None)
    assert gen.check_uppercase("ALL BIG!", None) and not gen.check_uppercase("ALL BIg", None)
    assert gen.check_max_words("one two three", 4) and not gen.check_max_words("one two three four", 4)
    assert gen.check_include_word("The Magnet points", "magnet") and not gen.check_include_word("magnetism", "magnet")
    assert gen.check_end_phrase("Done. Hope this helps.  ", "Hope this helps.") and not gen.check_end_phrase("Hope this helps. Done.", "Hope this helps.")
    assert gen.check_json_object('{"a": 1}', None) and not gen.check_json_object("{'a': 1}", None) and not gen.check_json_object("[1]", None)
    assert gen.check_start_word("Well, yes", "well") and not gen.check_start_word("Yes. Well", "Well")
    assert gen.check_quoted('"quoted"', None) and not gen.check_quoted('"half', None) and not gen.check_quoted('""', None)
    assert gen.check_bullets("- a\n- b", 2) and not gen.check_bullets("- a\n- b\n- c", 2) and not gen.check_bullets("1. a\n2. b", 2)


def test_grm_reads_the_records_and_renders_them():
    compact = load_template("compact")
    for split in ("train", "heldout"):
        recs = read_records(str(EXAMPLES / gen.FILES[split]))
        rows = _rows(split)
        assert [(r.id, r.preferred, r.subset, len(r.responses)) for r in recs] == [(x["id"], x["preferred"], x["subset"], len(x["responses"])) for x in rows]
        for rec in recs[:20]:
            text = render(compact, rec, tuple(range(len(rec.responses)))).messages[-1]["content"]
            assert all(resp in text for resp in rec.responses)  # braces and quotes of JSON answers pass through the template
