"""Checker-written judge trajectories for the constraints task: the control that tells "the model cannot
learn this" from "the model never produces a right trajectory to learn from".

    python examples/constraints_teacher.py examples/constraints_train.jsonl -o runs/teacher.jsonl --orders 2

Why (issue 17): rejective fine-tuning learns only from trajectories the judge already gets right. On this
task SmolLM2-135M got no record right in 3 draws on 143 of 360 records, and its right ones were mostly its
position preference agreeing with the label, so SFT on them taught that preference. Whether the training
path itself (loss mask, LoRA, export, llama.cpp with the adapter) can teach the skill is a separate
question, answered here: for every training record and a few seeded response orders, the constraint's own
checker writes what a right judge would (the constraint as the criterion, each response found to follow or
break it and why, scores that single out the best), and `grm train rft --accepted FILE` trains on that file
exactly as on rejective sampling's. This is distillation from the ground truth, not the paper's RFT: the
paper samples its cold-start data from a judge big enough to be right for the right reason.

Every trajectory goes through grm's one prompt layout (`render`), one parser (`judged_scores`) and one rule
(`is_correct`): a trajectory the parser would not read back as right is an error, never written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from make_constraints import CHECKERS  # noqa: E402

from grm_cli.core.prompt import Template, load_template, render  # noqa: E402
from grm_cli.core.records import record_from_dict  # noqa: E402
from grm_cli.core.rules import is_correct  # noqa: E402
from grm_cli.core.sampling import response_order, sample_seed  # noqa: E402
from grm_cli.errors import GrmError  # noqa: E402
from grm_cli.scoring.plan import judged_scores  # noqa: E402

BULLET = re.compile(r"\s*[-*]\s")  # a bullet line as make_constraints.check_bullets counts it
FOLLOWS, BREAKS = 9, 2  # the scores a right judge gives: any pair with FOLLOWS > BREAKS singles out the best


BROKEN = {  # what a checker sees in a response that breaks the constraint, in a few words (a 48-token critique holds four)
    "lowercase": lambda arg, text: "capital letters",
    "uppercase": lambda arg, text: "lowercase letters",
    "max_words": lambda arg, text: f"{len(text.split())} words",
    "include_word": lambda arg, text: f'no "{arg}"',
    "end_phrase": lambda arg, text: "another ending",
    "json_object": lambda arg, text: "not JSON",
    "start_word": lambda arg, text: "another first word",
    "quoted": lambda arg, text: "no quotes",
    "bullets": lambda arg, text: f"{sum(1 for line in text.splitlines() if BULLET.match(line))} bullets",
}


def why_broken(kind: str, arg, text: str) -> str:
    """The reason the analysis gives for a response that breaks a constraint of `kind`."""
    if kind not in BROKEN:
        raise ValueError(f"unknown constraint kind {kind!r}")
    return BROKEN[kind](arg, text)


def trajectory(template: Template, obj: dict, order: tuple[int, ...]) -> str:
    """The judge's text for the record's responses shown in `order`: principles, analysis, boxed scores."""
    c = obj["constraint"]
    check = CHECKERS[c["kind"]]
    parts, scores = [], []
    for shown, k in enumerate(order, start=1):
        text = obj["responses"][k]
        if check(text, c["arg"]):
            parts.append(f"Response {shown} follows it.")
            scores.append(FOLLOWS)
        else:
            parts.append(f"Response {shown} breaks it ({why_broken(c['kind'], c['arg'], text)}).")
            scores.append(BREAKS)
    box = ", ".join(map(str, scores))
    wording = c["wording"].replace("{arg}", str(c["arg"]))
    return (f"{template.principles_label} {wording}\n{template.critique_label} {' '.join(parts)}\n"
            f"{template.scores_label} \\boxed{{{box}}}")


def teacher_line(template: Template, obj: dict, source: str, line: int, orders: int, seed: int) -> dict:
    """One `grm train rft-data` line: the record's checker-written examples, one per seeded response order."""
    rec = record_from_dict(obj, source, line)
    if "constraint" not in obj or rec.preferred is None:
        raise ValueError(f"{source}:{line}: expected a constraints record (fields constraint and preferred), as make_constraints.py writes")
    examples, seen = [], set()
    for i in range(orders):
        s = sample_seed(seed, rec.id, i)
        order = response_order(len(rec.responses), s)
        if order in seen:  # two responses have 2 orders: no duplicate examples
            continue
        seen.add(order)
        text = trajectory(template, obj, order)
        _, scores = judged_scores(template, text, order)
        if not is_correct(scores, rec.preferred):
            raise ValueError(f"{source}:{line}: the checker's trajectory does not single out response {rec.preferred}: {text!r}")
        prompt = render(template, rec, order)
        examples.append({"prompt": list(prompt.messages), "completion": [{"role": "assistant", "content": text}], "hinted": False,
                         "order": list(order), "scores": list(scores), "sample": i, "seed": s, "teacher": "checker"})
    return {"id": rec.id, "status": "kept", "right": len(examples), "wrong": 0, "hinted_kept": None, "examples": examples}


def write_teacher(src: Path, out: Path, *, template: str = "compact", orders: int = 2, seed: int = 0) -> int:
    """Write the teacher file for every record of `src`; returns the number of examples."""
    tmpl = load_template(template)
    lines, count = [], 0
    for n, raw in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1):
        if raw.strip():
            row = teacher_line(tmpl, json.loads(raw), str(src), n, orders, seed)
            count += len(row["examples"])
            lines.append(json.dumps(row) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(lines), encoding="utf-8")
    return count


VERDICT = re.compile(r"Response (\d+) (follows|breaks) it")


def audit(records: Path, results: Path) -> dict:
    """Where a judge trained on these trajectories goes wrong, from its stored samples (`grm eval -o`):
    does its analysis see what the checker sees (every response's follows/breaks verdict right), and do its
    boxed scores agree with its own analysis (every response it says follows scores above every one it says
    breaks)? The two tell "cannot check" from "checks, then does not use it"."""
    objs = {o["id"]: o for o in map(json.loads, records.read_text(encoding="utf-8").splitlines()) if o}
    counts = {"samples": 0, "analysed": 0, "analysis_right": 0, "scores_agree": 0, "right_and_agree": 0}
    by_kind: dict[str, list[int]] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        obj = objs[row["id"]]
        c = obj["constraint"]
        for s in row["samples"]:
            counts["samples"] += 1
            said = {int(i): v == "follows" for i, v in VERDICT.findall(s.get("critique") or "")}
            order = s["order"]
            if sorted(said) != list(range(1, len(order) + 1)):
                continue  # not every response given a verdict (cut off, or another wording)
            counts["analysed"] += 1
            truth = {j: CHECKERS[c["kind"]](obj["responses"][k], c["arg"]) for j, k in enumerate(order, start=1)}
            right = said == truth
            shown = s.get("scores_shown")
            agree = bool(shown) and all(shown[a - 1] > shown[b - 1] for a in said if said[a] for b in said if not said[b]) and any(said.values())
            counts["analysis_right"] += right
            counts["scores_agree"] += agree
            counts["right_and_agree"] += right and agree
            by_kind.setdefault(c["kind"], [0, 0])
            by_kind[c["kind"]][0] += right
            by_kind[c["kind"]][1] += 1
    counts["analysis_right_by_kind"] = {k: round(r / n, 3) for k, (r, n) in sorted(by_kind.items())}
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", type=Path, help="a constraints file (examples/constraints_train.jsonl)")
    ap.add_argument("-o", "--out", type=Path, help="the rft-data file to write (for grm train rft --accepted)")
    ap.add_argument("-t", "--template", default="compact")
    ap.add_argument("--orders", type=int, default=2, help="seeded response orders per record (one example each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--audit", type=Path, metavar="RESULTS", help="instead: audit a judge's stored samples (grm eval -o RESULTS) on RECORDS")
    args = ap.parse_args()
    if args.audit:
        print(json.dumps(audit(args.records, args.audit), indent=2))
        return
    if args.out is None:
        ap.error("give -o OUT (or --audit RESULTS)")
    try:
        count = write_teacher(args.records, args.out, template=args.template, orders=args.orders, seed=args.seed)
    except (OSError, ValueError, GrmError) as exc:
        sys.exit(f"error: {exc}")
    print(f"{args.out}: {count} checker-written trajectories")


if __name__ == "__main__":
    main()
