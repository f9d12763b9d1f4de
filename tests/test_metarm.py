"""The built-in meta RM: its head, its input layout and features, guided voting, evaluation, and the whole
loop (score -> train metarm -> score --meta-rm) with the real small model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, grm

from grm_cli.core.prompt import load_template, render_meta
from grm_cli.core.records import Record, Turn
from grm_cli.core.voting import guided_vote, meta_keep
from grm_cli.errors import InputError
from grm_cli.evaluation.metrics import _guided, accuracy, evaluate, k_meta_sweep, scaling_curve
from grm_cli.metarm.model import MetaRMFile, fit_logistic, roc_auc, split_by_group, train_head, trajectories_from_results
from grm_cli.scoring.results import StoredResult, StoredSample


# -- the head --------------------------------------------------------------------------------------
def separable(n=240, d=24, seed=0, positive_share=0.5):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 5.0, size=d) + rng.normal(size=d) * 3  # unscaled, off-centre
    margin = ((x - x.mean(0)) / x.std(0)) @ w
    y = (margin > np.quantile(margin, 1 - positive_share)).astype(int)
    return x.astype(np.float32), y


def test_head_recovers_separable_trajectories_on_held_out_records():
    x, y = separable()
    groups = [f"rec-{i // 4}" for i in range(len(y))]  # 4 samples per record
    head, report = train_head(x, y, groups, holdout=0.25, seed=1, l2=0.1)
    assert report.heldout["count"] > 40
    assert report.heldout["auc"] > 0.97 and report.heldout["accuracy"] > 0.9
    assert report.train["auc"] > 0.99


def test_balanced_weights_learn_the_rare_class():
    x, y = separable(n=400, positive_share=0.1)  # a small GRM: most samples wrong
    head = fit_logistic(x, y, l2=0.1)
    pred = head.predict(x) >= 0.5
    assert pred[y == 1].mean() > 0.85 and (~pred[y == 0]).mean() > 0.85


def test_one_class_is_refused_with_a_clear_message():
    x = np.zeros((6, 3), dtype=np.float32)
    with pytest.raises(InputError, match="all 6 trajectories are wrong.*both kinds"):
        train_head(x, np.zeros(6, dtype=int), ["a"] * 6)
    with pytest.raises(InputError, match="all 6 trajectories are right"):
        train_head(x, np.ones(6, dtype=int), ["a"] * 6)


def test_roc_auc():
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert roc_auc([0.3, 0.4], [1, 1]) is None


def test_held_out_split_keeps_a_records_samples_together():
    groups = [f"r{i // 3}" for i in range(30)]
    train, test = split_by_group(groups, 0.2, seed=0)
    held = {g for g, t in zip(groups, test) if t}
    assert len(held) == 2 and not held & {g for g, t in zip(groups, train) if t}


def test_saved_head_round_trips_and_refuses_another_model(tmp_path):
    x, y = separable(n=80, d=8)
    head = fit_logistic(x, y)
    saved = MetaRMFile(head, "Model A", "fp-a", "pointwise", 8, {"heldout": {"auc": 0.9}}, ["run.jsonl"])
    path = saved.save(tmp_path / "m.json")
    back = MetaRMFile.load(path)
    assert np.allclose(back.head.predict(x), head.predict(x))
    assert back.model == "Model A" and back.template == "pointwise" and back.trained_on == ["run.jsonl"]
    back.check("fp-a", "Model A", load_template("pointwise"))
    with pytest.raises(InputError, match='trained on the hidden states of "Model A"'):
        back.check("fp-b", "Model B", load_template("pointwise"))
    with pytest.raises(InputError, match='template "pointwise", not "judge"'):
        back.check("fp-a", "Model A", load_template("judge"))
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a meta RM file"):
        MetaRMFile.load(tmp_path / "bad.json")
    (tmp_path / "cut.json").write_text(path.read_text()[:200])
    with pytest.raises(InputError, match="not a meta RM file"):
        MetaRMFile.load(tmp_path / "cut.json")


# -- guided voting ---------------------------------------------------------------------------------
def test_meta_keep_takes_the_best_rated_parsed_samples():
    scores = [(8, 2), None, (3, 9), (5, 5), (9, 1)]
    meta = [0.2, None, 0.9, 0.2, 0.7]
    assert meta_keep(scores, meta, 2) == (False, False, True, False, True)
    assert meta_keep(scores, meta, 3) == (True, False, True, False, True)  # equal ratings: the earlier sample
    v = guided_vote(scores, meta, 2, 2)
    assert v.totals == (12, 10) and v.votes == 2 and v.unparsed == 1
    assert guided_vote(scores, meta, 4, 2).totals == (25, 17)


def test_eval_guided_selection_matches_voting_rule():
    rng = np.random.default_rng(0)
    for _ in range(50):
        kk = 6
        meta = rng.choice([0.1, 0.5, 0.9], size=kk)
        scores = [tuple(rng.integers(1, 11, size=2)) if rng.random() > 0.2 else None for _ in range(kk)]
        parsed = np.array([s is not None for s in scores])
        mask = _guided(parsed[None, :].copy(), meta, 3)
        assert tuple(mask[0]) == meta_keep(scores, list(meta), 3)


def stored(rid, preferred, samples):
    return StoredResult(rid, 2, preferred, None, tuple(StoredSample(scores=s, order=(0, 1), meta_score=m) for s, m in samples))


def test_eval_reports_guided_curve_and_k_meta_sweep():
    # The meta RM rates the right samples high: guided voting fixes what plain voting gets wrong.
    results = [
        stored(f"r{i}", 0, [((9, 2), 0.9), ((9, 3), 0.8), ((1, 9), 0.1), ((1, 9), 0.2)]) for i in range(5)
    ]
    plain = accuracy(results)
    assert plain.accuracy == 0.0  # 20 vs 23: wrong without the meta RM
    summary = evaluate(results, draws=50)
    assert [p.k for p in summary.meta_curve] == [1, 2, 4]
    assert summary.meta_curve[-1].accuracy == 1.0  # k = 4, k_meta = 2: only the two right samples vote
    assert dict(summary.meta_sweep) == {1: 1.0, 2: 1.0, 4: 0.0}
    assert dict(k_meta_sweep(results))[4] == plain.accuracy == scaling_curve(results)[-1].accuracy
    as_json = summary.to_json()["grm_eval"]
    assert as_json["meta_sweep"][0] == {"k_meta": 1, "accuracy": 1.0} and len(as_json["meta_curve"]) == 3


def test_no_meta_section_without_ratings():
    summary = evaluate([stored("a", 0, [((9, 2), None), ((2, 9), None)])], draws=5)
    assert summary.meta_curve == [] and summary.meta_sweep == []


# -- input layout and features ---------------------------------------------------------------------
def rec():
    return Record(id="r", context=(Turn("user", "2+2?"),), responses=("4", "5"), preferred=0)


def test_meta_input_layout():
    p = render_meta(load_template("pointwise"), rec(), (1, 0), "Specific Criteria: exact\nAnalysis: ...\nScores: \\boxed{2, 9}")
    user = p.messages[0]["content"]
    assert user.startswith("Please score the responses.\n\n#### Conversation Context ####\n2+2?\n#### Responses to be Scored ####")
    assert user.index("[The Begin of Response 1]\n5") < user.index("[The Begin of Response 2]\n4")  # the sample's own order
    assert "General Evaluation Criteria" not in user
    assert p.assistant_prefix.endswith("\\boxed{2, 9}")


def test_hidden_states_do_not_depend_on_what_came_before(tiny_engine):
    from grm_cli.engine.hidden import HiddenStates

    m1 = [{"role": "user", "content": "Please score the responses. 2+2? [1] 4 [2] 5"}]
    m2 = [{"role": "user", "content": "Please score the responses. 2+2? [1] 5 [2] 4"}]
    texts = ["Analysis: 1 is right. Scores: \\boxed{9, 2}", "Analysis: 2 is right. Scores: \\boxed{2, 9}"]
    fresh = {(i, t): HiddenStates(tiny_engine, n_ctx=512).last_hidden(m, t) for i, m in enumerate((m1, m2)) for t in texts}
    h = HiddenStates(tiny_engine, n_ctx=512)
    assert h.n_embd == len(fresh[0, texts[0]])
    for i, t in [(0, texts[0]), (0, texts[1]), (1, texts[0]), (0, texts[0]), (1, texts[1]), (1, texts[1])]:
        np.testing.assert_array_equal(h.last_hidden((m1, m2)[i], t), fresh[i, t])
    assert np.abs(fresh[0, texts[0]] - fresh[0, texts[1]]).max() > 1e-3


def test_trajectories_are_labelled_by_the_rule(tmp_path):
    line = {
        "input": {"id": "a", "prompt": "q", "responses": ["x", "y"], "preferred": 1},
        "run": {"template": "pointwise", "model": "m"},
        "samples": [
            {"index": 0, "order": [0, 1], "scores": [2, 9], "text": "right"},
            {"index": 1, "order": [1, 0], "scores": [5, 5], "text": "tie"},
            {"index": 2, "order": [0, 1], "scores": None, "text": "unparsed"},
            {"index": 3, "order": [1, 0], "scores": [9, 2], "text": "wrong"},
        ],
    }
    unlabelled = {**line, "input": {"id": "b", "prompt": "q", "responses": ["x", "y"]}}
    found = trajectories_from_results([(1, line), (2, unlabelled)], "run.jsonl")
    assert [(t.text, t.right) for t in found.items] == [("right", True), ("tie", False), ("wrong", False)]
    assert found.unparsed_samples == 1 and found.unlabelled_records == 1
    with pytest.raises(InputError, match="run.jsonl:3"):
        trajectories_from_results([(3, {"id": "x"})], "run.jsonl")


# -- the whole loop with the real small model ------------------------------------------------------
@pytest.mark.slow
def test_train_a_meta_rm_and_vote_with_it(tmp_path, tiny_model):
    # four records: rating a trajectory evaluates its whole text for hidden states, the cost of this test
    data = str(tmp_path / "llmbar4.jsonl")
    Path(data).write_text("".join((EXAMPLES / "llmbar.jsonl").read_text().splitlines(keepends=True)[:4]))
    run, head, guided = tmp_path / "run.jsonl", tmp_path / "metarm.json", tmp_path / "guided.jsonl"
    common = ["-k", "4", "--max-tokens", "16", "--ctx", "2048"]
    p = grm("score", data, *common, "-o", str(run))
    assert p.returncode == 0, p.stderr
    t = grm("train", "metarm", str(run), "-o", str(head), "--ctx", "2048", "--json")
    assert t.returncode == 0, t.stderr
    report = json.loads(t.stdout)
    assert report["trajectories"] == 16 and 0 < report["right"] < 16
    assert report["heldout"]["count"] > 0 and report["train"]["auc"] is not None
    saved = json.loads(head.read_text())
    assert saved["template"] == "pointwise" and saved["n_embd"] == 576 and saved["trained_on"] == ["run.jsonl"]
    again = grm("train", "metarm", str(run), "-o", str(head))
    assert again.returncode == 2 and "never overwritten" in again.stderr

    s = grm("score", data, *common, "--meta-rm", str(head), "--k-meta", "2", "-o", str(guided), "--json")
    assert s.returncode == 0, s.stderr
    for line in map(json.loads, s.stdout.splitlines()):
        assert line["run"]["k_meta"] == 2 and line["votes"] == 2
        rated = [x for x in line["samples"] if x["scores"] is not None]
        assert all(0.0 <= x["meta_score"] <= 1.0 for x in rated)
        kept = [x for x in line["samples"] if x["meta_kept"]]
        assert len(kept) == 2 and min(x["meta_score"] for x in kept) >= max((x["meta_score"] for x in rated if not x["meta_kept"]), default=0)
        assert line["scores"] == [sum(x["scores"][i] for x in kept) for i in range(2)]
    e = grm("eval", str(guided), "--json")
    assert e.returncode == 0, e.stderr
    g = json.loads(e.stdout)["grm_eval"]
    assert [p["k"] for p in g["meta_curve"]] == [1, 2, 4] and [m["k_meta"] for m in g["meta_sweep"]] == [1, 2, 4]

    wrong = grm("score", data, "-k", "2", "--meta-rm", str(head), "--model", str(tiny_model), "--max-tokens", "4")
    assert wrong.returncode == 2 and "trained on the hidden states of" in wrong.stderr and "Traceback" not in wrong.stderr


def test_cross_validation_chooses_a_stronger_penalty_when_features_outnumber_samples():
    from grm_cli.metarm.model import choose_l2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 400))
    y = ((x[:, 0] + 0.5 * rng.normal(size=160)) > 0).astype(int)  # one informative feature of 400
    groups = [f"r{i // 4}" for i in range(160)]
    chosen = choose_l2(x, y, groups)
    assert chosen >= 100
    xt = rng.normal(size=(400, 400))
    yt = ((xt[:, 0] + 0.5 * rng.normal(size=400)) > 0).astype(int)
    assert roc_auc(fit_logistic(x, y, l2=chosen).predict(xt), yt) >= roc_auc(fit_logistic(x, y, l2=0.1).predict(xt), yt)
    _, report = train_head(x, y, groups, seed=0)
    assert report.l2 == choose_l2(x[~split_by_group(groups, 0.2, 0)[1]], y[~split_by_group(groups, 0.2, 0)[1]],
                                  [g for g, t in zip(groups, split_by_group(groups, 0.2, 0)[1]) if not t])
