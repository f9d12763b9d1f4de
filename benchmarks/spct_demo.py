"""SPCT end to end on SmolLM2-135M-Instruct: rejective fine-tuning, then rule-based RL, on a task whose
right answers are checkable, with held-out accuracy of the base model, the RFT adapter and the RFT+RL
adapter measured in the same run.

Tasks (`--task`):
- constraints: instruction-following constraints in the spirit of IFEval (examples/constraints_*.jsonl,
  written by examples/make_constraints.py: 360 training and 240 held-out records of 2-4 responses, no
  question or constraint wording shared). The judge must check a property of the text (case, length, a
  word, an ending, JSON, ...), which a small model can see, unlike a sum it cannot compute.
- add: "What is a + b?" with the right sum and a near miss; copy: "Repeat exactly" with one word swapped.

Every number comes from the real commands: `grm train rft`, `grm train rl`, and `grm eval` with the
exported llama.cpp adapters (--lora); the metrics are `grm eval --json` on the stored results.

    python benchmarks/spct_demo.py --task constraints --out runs/spct-ifc --test 200 --max-tokens 32      # the paper's RFT, then RL
    python benchmarks/spct_demo.py --task constraints --cold-start teacher --out runs/spct-ifc-teacher \
        --test 200 --k 8 --max-tokens 48 --rft-steps 120 --rl-steps 6                                      # the checker-written control
    python benchmarks/spct_demo.py --task constraints --out runs/smoke --train 8 --test 8 --rft-steps 2 --rl-steps 2   # does it run

Held-out metrics, per stage, from `grm eval` on OUT/STAGE.jsonl (the stored samples):
- voting@k accuracy as grm eval reports it (a tie broken by a seeded random pick, paper §5.1), strict
  accuracy (a tie is wrong, Eq. 10) and the tie rate; voting@1 is the same on each record's first sample
  alone (OUT/STAGE_k1.jsonl); the voting@k curve for k = 1, 2, 4, ... K (OUT/curve.png);
- first shown wins: share of parsed samples whose unique top score is the response shown first (position
  bias; `grm eval`'s diagnostics, beside the unbiased judge's mean of 1/n);
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
sys.path.insert(0, str(ROOT / "examples"))


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


def evaluate(test: Path, lora: Path | None, name: str, args) -> dict:
    """Score the held-out records with `grm eval` (llama.cpp, the exported adapter if any) into
    OUT/NAME.jsonl, and summarise those stored results with `grm eval --json`: at voting@K (all samples)
    and at voting@1 (each record's first sample alone, a results file `grm eval` reads like any other).
    The base model's results resume (a rerun, or a run copying OUT/base.jsonl from one with the same
    held-out set and settings, generates only what is missing: grm refuses a file of other settings); an
    adapter's are generated afresh (--force), since its stage has just trained it."""
    t = time.perf_counter()
    stored = args.out / f"{name}.jsonl"
    grm("eval", str(test), "-k", str(args.k), "-t", args.template, "--max-tokens", str(args.max_tokens), "--seed", str(args.seed + 1000),
        "--ctx", str(args.ctx), "--parallel", str(args.parallel), "--no-cache", "-o", str(stored), *(["--force"] if lora else []),
        *(["--lora", str(lora)] if lora else []), quiet=True)
    seconds = round(time.perf_counter() - t, 1)
    at = {j: summary(first_samples(stored, j, args.out / f"{name}_k{j}.jsonl")) for j in sorted({1, min(4, args.k)}) if j < args.k}
    at_k = summary(stored)
    return {"at_k": at_k, "at_1": at.get(1, at_k), "at_4": at.get(4, at_k), "first_shown_wins": at_k["first_shown_wins"], "seconds": seconds,
            "results": str(stored)}


def first_samples(stored: Path, j: int, dst: Path) -> Path:
    """Each record's first j samples alone: the results a `-k j` run of the same seeds stores (sample i's seed
    and response order depend only on the seed, the record and i), a file `grm eval` reads like any other."""
    dst.write_text("".join(json.dumps({**obj, "samples": obj["samples"][:j]}) + "\n" for obj in map(json.loads, stored.read_text(encoding="utf-8").splitlines())),
                   encoding="utf-8")
    return dst


def summary(results: Path) -> dict:
    """`grm eval --json` on stored results (nothing is generated): grm's own accuracy, strict accuracy,
    tie rate, diagnostics and voting@k curve."""
    g = json.loads(grm("eval", str(results), "--json", capture=True))["grm_eval"]
    o = g["overall"]
    return {"accuracy": o["accuracy"], "strict": o["strict_accuracy"], "tie_rate": o["tie_rate"], "no_verdict": o["no_verdict_rate"],
            "parse_failures": g["diagnostics"]["parse_failure_rate"], "position_consistency": g["diagnostics"]["position_consistency"],
            "first_shown_wins": g["diagnostics"]["first_shown_wins_rate"] or 0.0,
            "curve": {p["k"]: p["accuracy"] for p in g["curve"]}, "subsets": {k: v["accuracy"] for k, v in g["subsets"].items()}}


def grm(*argv: str, capture: bool = False, quiet: bool = False) -> str:
    """Run one grm command as a user would (a child process); returns its stdout when captured."""
    cmd = [sys.executable, "-m", "grm_cli", *argv]
    if not capture:
        print("$ grm", " ".join(argv), flush=True)
    out = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture or quiet else None)
    return out.stdout or ""


def take(src: Path, n: int | None, dst: Path) -> Path:
    """The first n records of a committed data file (all of them without n)."""
    lines = src.read_text(encoding="utf-8").splitlines()
    dst.write_text("".join(line + "\n" for line in lines[:n] if line.strip()), encoding="utf-8")
    return dst


def task_data(args) -> tuple[Path, Path]:
    """The training and held-out files of the task, written into OUT (the constraints task: the committed
    examples/ files, whose questions and constraint wordings do not overlap; add and copy: generated here)."""
    out = args.out
    if args.task == "constraints":
        return (take(ROOT / "examples" / "constraints_train.jsonl", args.train, out / "train.jsonl"),
                take(ROOT / "examples" / "constraints_heldout.jsonl", args.test, out / "heldout.jsonl"))
    seen: set = set()
    train, test = out / "train.jsonl", out / "heldout.jsonl"
    write_jsonl(train, make_data(args.train or 240, args.seed, seen, args.task))
    write_jsonl(test, make_data(args.test or 100, args.seed + 1, seen, args.task))  # disjoint queries
    return train, test


def table(report: dict, k: int) -> str:
    """The README table: every accuracy as `grm eval` computed it from the stored results."""
    ks = [1, 4, k] if k > 4 else [1, k]
    head = " | ".join(f"voting@{j} acc | @{j} strict | @{j} ties" for j in ks)
    rows = [f"| stage | {head} | curve k=1..{k} | first shown wins | unparsed |", "|---|" + "---|" * (3 * len(ks) + 3)]
    for name, m in report["stages"].items():
        cells = " | ".join(f"{a['accuracy']:.3f} | {a['strict']:.3f} | {a['tie_rate']:.3f}" for a in (m[f"at_{j}" if j < k else "at_k"] for j in ks))
        curve = " / ".join(f"{v:.3f}" for v in m["at_k"]["curve"].values())
        rows.append(f"| {name} | {cells} | {curve} | {m['first_shown_wins']:.3f} | {m['at_k']['parse_failures']:.3f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/spct-demo"))
    ap.add_argument("--task", choices=("add", "copy", "constraints"), default="add",
                    help="add: a + b with a near miss; copy: 'Repeat exactly' with one word swapped; constraints: examples/constraints_*.jsonl")
    ap.add_argument("--train", type=int, default=None, help="training records (default: add/copy 240, constraints all 360)")
    ap.add_argument("--test", type=int, default=None, help="held-out records (default: add/copy 100, constraints all 240)")
    ap.add_argument("--k", type=int, default=4, help="samples per held-out record (voting@k; the curve covers 1, 2, 4, ... k)")
    ap.add_argument("--template", default="compact")
    ap.add_argument("--rl-max-completion", type=int, default=96, help="RL completions have no forced score line: room for critique + scores")
    ap.add_argument("--max-tokens", type=int, default=48, help="critique budget of every sample (then the forced score line)")
    ap.add_argument("--max-length", type=int, default=None, help="training examples' token limit (default: 512; constraints 640, its longest prompt is 437)")
    ap.add_argument("--rft-steps", type=int, default=80)
    ap.add_argument("--rl-steps", type=int, default=30)
    ap.add_argument("--rl-lr", type=float, default=1e-4)
    ap.add_argument("--cold-start", choices=("rft", "teacher"), default="rft",
                    help="rft: the paper's rejective sampling by the base model; teacher (constraints only): SFT on trajectories the "
                         "constraint checkers write (examples/constraints_teacher.py), the control for 'can this model learn the task at all'")
    ap.add_argument("--teacher-orders", type=int, default=2, help="--cold-start teacher: seeded response orders per training record")
    ap.add_argument("--balance-positions", action="store_true", help="RFT on as many trajectories with the best shown in each position")
    ap.add_argument("--ctx", type=int, default=2048, help="llama.cpp context of the held-out scoring")
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    max_length = str(args.max_length or (640 if args.task == "constraints" else 512))

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    train, test = task_data(args)
    report = {"settings": vars(args) | {"out": str(out)}, "stages": {}}
    t0 = time.perf_counter()

    def stage(name: str, lora: Path | None, extra: dict) -> None:
        m = evaluate(test, lora, name, args)
        report["stages"][name] = {**m, **extra}
        a1, a4, ak = m["at_1"], m["at_4"], m["at_k"]
        mid = f"voting@4 {a4['accuracy']:.3f} (strict {a4['strict']:.3f}, ties {a4['tie_rate']:.3f}), " if args.k > 4 else ""
        print(f"[{name}] held-out ({len(read_lines(test))} records): voting@1 {a1['accuracy']:.3f} (strict {a1['strict']:.3f}, ties {a1['tie_rate']:.3f}), {mid}"
              f"voting@{args.k} {ak['accuracy']:.3f} (strict {ak['strict']:.3f}, ties {ak['tie_rate']:.3f}), first shown wins {m['first_shown_wins']:.3f}, "
              f"unparsed {ak['parse_failures']:.3f} ({m['seconds']} s)", flush=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    stage("base", None, {})
    common = ["-t", args.template, "--seed", str(args.seed), "--max-length", max_length]
    t = time.perf_counter()
    first, second = ("rft", "rft+rl") if args.cold_start == "rft" else ("teacher-sft", "teacher-sft+rl")
    if args.cold_start == "teacher":
        if args.task != "constraints":
            sys.exit("--cold-start teacher needs --task constraints (its checkers write the trajectories)")
        from constraints_teacher import write_teacher
        accepted = out / "teacher.jsonl"
        print(f"{accepted}: {write_teacher(train, accepted, template=args.template, orders=args.teacher_orders, seed=args.seed)} checker-written trajectories", flush=True)
        given = ["--accepted", str(accepted)]
    else:
        accepted, given = out / "rft" / "accepted.jsonl", []
    grm("train", "rft", str(train), "-o", str(out / "rft"), "--max-tokens", str(args.max_tokens), "--steps", str(args.rft_steps),
        "--batch", "4", "--lr", "2e-4", *given, *(["--balance-positions"] if args.balance_positions else []), *common)
    stage(first, out / "rft" / "adapter.gguf", {"train_seconds": round(time.perf_counter() - t, 1)})
    t = time.perf_counter()
    grm("train", "rl", str(train), "--adapter", str(out / "rft" / "adapter"), "--rft-data", str(accepted),
        "-o", str(out / "rl"), "--steps", str(args.rl_steps), "--batch", "8", "--group", "4", "--lr", str(args.rl_lr), "--beta", "0.08",
        "--max-completion", str(args.rl_max_completion), *common)
    stage(second, out / "rl" / "adapter.gguf", {"train_seconds": round(time.perf_counter() - t, 1)})
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    # the three runs side by side, and their voting@k curves in one plot: grm eval on the stored results
    stored = [m["results"] for m in report["stages"].values()]
    try:
        grm("eval", *stored, "--plot", str(out / "curve.png"))
    except subprocess.CalledProcessError:  # no matplotlib: the same tables without the plot
        grm("eval", *stored)
    print("\n" + table(report, args.k))
    print(f"\ntotal {report['total_seconds']} s; report: {out / 'report.json'}")


def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    main()
