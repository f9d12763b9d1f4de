"""SPCT end to end on SmolLM2-135M-Instruct: rejective fine-tuning, then rule-based RL, on a task whose
right answers are checkable (two-number addition, one right and one wrong answer per query), with
held-out accuracy of the base model, the RFT adapter and the RFT+RL adapter measured in the same run.

A demonstration of the machinery, not of a good reward model: a 135M model, a few hundred examples, a few
minutes of CPU training. Every number comes from the real commands (`grm train rft`, `grm train rl`, the
exported llama.cpp adapters loaded with --lora) and the one correctness rule.

    python benchmarks/spct_demo.py --out runs/spct-demo            # about an hour on 2 CPU cores
    python benchmarks/spct_demo.py --out runs/spct-demo --train 40 --test 40 --rft-steps 10 --rl-steps 4   # a quick look

Held-out metrics (the rule of `rules.is_correct`: the right answer must score strictly highest):
- sample accuracy: share of single samples (k per record) whose scores single out the right answer;
- voting@k accuracy: share of records whose summed scores single out the right answer (a tie is wrong);
- unparsed: share of samples with no valid score line (the forced score line keeps this near 0).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


WORDS = ("red blue green small large quiet fast slow river stone cloud garden window letter music table paper "
         "winter summer morning evening bird horse apple bread silver golden open closed under over near far").split()


def make_copy_data(n: int, seed: int, exclude: set) -> list[dict]:
    """"Repeat exactly" queries: the exact copy against a copy with one word swapped; checkable by comparison."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        words = rng.sample(WORDS, 6)
        key = tuple(words)
        if key in exclude:
            continue
        exclude.add(key)
        wrong = list(words)
        at = rng.randrange(len(words))
        wrong[at] = rng.choice([w for w in WORDS if w not in words])
        answers = [" ".join(words), " ".join(wrong)]
        first_right = rng.random() < 0.5
        responses = answers if first_right else answers[::-1]
        out.append({"id": "copy-" + "-".join(words), "prompt": f"Repeat exactly: {' '.join(words)}", "responses": responses, "preferred": 0 if first_right else 1})
    return out


def make_data(n: int, seed: int, exclude: set, task: str = "add") -> list[dict]:
    """Addition queries with the right sum and a near miss, in random order; `preferred` names the right one."""
    if task == "copy":
        return make_copy_data(n, seed, exclude)
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        if (a, b) in exclude:
            continue
        exclude.add((a, b))
        right = a + b
        wrong = right + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])
        answers = [f"{a} + {b} = {right}", f"{a} + {b} = {wrong}"]
        first_right = rng.random() < 0.5
        responses = answers if first_right else answers[::-1]
        out.append({"id": f"add-{a}-{b}", "prompt": f"What is {a} + {b}?", "responses": responses, "preferred": 0 if first_right else 1})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def evaluate(test: Path, lora: Path | None, args) -> dict:
    """Score the held-out records through llama.cpp (with the adapter, if any) and apply the rule."""
    from grm_cli.core.prompt import load_template
    from grm_cli.core.rules import is_correct
    from grm_cli.engine.factory import EngineOptions, build_engine
    from grm_cli.io.jsonl import read_records
    from grm_cli.scoring.pipeline import ScoreSettings, score_records

    tmpl = load_template(args.template)
    options = EngineOptions(ctx=1024, parallel=args.parallel, lora=lora, cache=False)
    engine = build_engine(options)
    settings = ScoreSettings(k=args.k, temperature=0.5, seed=args.seed + 1000, max_tokens=args.max_tokens)
    t = time.perf_counter()
    results = list(score_records(read_records(str(test)), engine, tmpl, settings, chunk=options.chunk(args.k)))
    samples = [(s, r.record.preferred) for r in results for s in r.samples]
    right = sum(is_correct(s.scores, label) for s, label in samples)
    unparsed = sum(s.scores is None for s, _ in samples)
    voted = sum(r.verdict.best == r.record.preferred for r in results)
    ties = sum(r.verdict.best is None for r in results)
    # position bias: samples whose top score is (uniquely) the response SHOWN first
    firsts = [s for s, _ in samples if s.judgment.scores is not None and len(set(s.judgment.scores)) > 1 and s.judgment.scores[0] == max(s.judgment.scores)]
    return {
        "records": len(results), "samples": len(samples),
        "sample_accuracy": right / len(samples), "voting_accuracy": voted / len(results),
        "voting_ties": ties / len(results), "unparsed": unparsed / len(samples),
        "first_shown_wins": len(firsts) / len(samples),
        "seconds": round(time.perf_counter() - t, 1),
    }


def grm(*argv: str) -> None:
    cmd = [sys.executable, "-m", "grm_cli", *argv]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/spct-demo"))
    ap.add_argument("--train", type=int, default=240, help="training queries")
    ap.add_argument("--test", type=int, default=100, help="held-out queries")
    ap.add_argument("--k", type=int, default=4, help="samples per held-out query")
    ap.add_argument("--task", choices=("add", "copy"), default="add", help="add: a + b with a near miss; copy: 'Repeat exactly' with one word swapped")
    ap.add_argument("--template", default="compact")
    ap.add_argument("--rl-max-completion", type=int, default=96, help="RL completions have no forced score line: room for critique + scores")
    ap.add_argument("--max-tokens", type=int, default=48, help="critique budget of every sample (then the forced score line)")
    ap.add_argument("--rft-steps", type=int, default=80)
    ap.add_argument("--rl-steps", type=int, default=30)
    ap.add_argument("--rl-lr", type=float, default=1e-4)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    seen: set = set()
    train, test = out / "arith_train.jsonl", out / "arith_test.jsonl"
    write_jsonl(train, make_data(args.train, args.seed, seen, args.task))
    write_jsonl(test, make_data(args.test, args.seed + 1, seen, args.task))  # disjoint queries
    report = {"settings": vars(args) | {"out": str(out)}, "stages": {}}
    t0 = time.perf_counter()

    def stage(name: str, lora: Path | None, extra: dict) -> None:
        m = evaluate(test, lora, args)
        report["stages"][name] = {**m, **extra}
        print(f"[{name}] held-out: sample accuracy {m['sample_accuracy']:.3f}, voting@{args.k} {m['voting_accuracy']:.3f}, "
              f"ties {m['voting_ties']:.3f}, unparsed {m['unparsed']:.3f}, first shown wins {m['first_shown_wins']:.3f} ({m['seconds']} s)", flush=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    stage("base", None, {})
    common = ["-t", args.template, "--seed", str(args.seed)]
    t = time.perf_counter()
    grm("train", "rft", str(train), "-o", str(out / "rft"), "--max-tokens", str(args.max_tokens), "--steps", str(args.rft_steps),
        "--batch", "4", "--lr", "2e-4", "--max-length", "512", *common)
    stage("rft", out / "rft" / "adapter.gguf", {"train_seconds": round(time.perf_counter() - t, 1)})
    t = time.perf_counter()
    grm("train", "rl", str(train), "--adapter", str(out / "rft" / "adapter"), "--rft-data", str(out / "rft" / "accepted.jsonl"),
        "-o", str(out / "rl"), "--steps", str(args.rl_steps), "--batch", "8", "--group", "4", "--lr", str(args.rl_lr), "--beta", "0.08",
        "--max-completion", str(args.rl_max_completion), "--max-length", "512", *common)
    stage("rft+rl", out / "rl" / "adapter.gguf", {"train_seconds": round(time.perf_counter() - t, 1)})
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\n| model | sample accuracy | voting@%d | ties | unparsed | first shown wins |" % args.k)
    print("|---|---|---|---|---|---|")
    for name, m in report["stages"].items():
        print(f"| {name} | {m['sample_accuracy']:.3f} | {m['voting_accuracy']:.3f} | {m['voting_ties']:.3f} | {m['unparsed']:.3f} | {m['first_shown_wins']:.3f} |")


if __name__ == "__main__":
    main()
