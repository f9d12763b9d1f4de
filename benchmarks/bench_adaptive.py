"""Adaptive voting against full voting@K, in one run, on the same records, with grm's commands as users run
them (the default model, SmolLM2-135M, unless --model):

(a) full:  grm score RECORDS -k K -o full.jsonl --no-cache            (wall time, samples, generated tokens)
(b) each rule replayed on (a)'s stored samples: grm eval full.jsonl --adaptive RULE --json
    (what an adaptive run draws is a prefix of (a)'s samples, seeded by index: agreement with the full
    voting@K verdict, samples and tokens saved, nothing generated)
(c) live:  grm score RECORDS -k K --adaptive stat -o stat.jsonl --no-cache   (wall time, and its verdicts
    against (a)'s: the same seeds and orders, but batches of another make-up, so with the batched engine
    some sample texts differ from (a)'s, as between two --parallel settings; (b) is the rule's agreement)

    python benchmarks/bench_adaptive.py --records 100 --k 16 --max-tokens 64
    python benchmarks/bench_adaptive.py --data examples/llmbar_all.jsonl --model M.gguf --n-gpu-layers -1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def grm(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "grm_cli", *map(str, args)], capture_output=True, text=True)
    if p.returncode not in (0, 4):  # 4: some record had no parsed sample (reported, not fatal here)
        sys.exit(f"grm {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p, time.perf_counter() - t0


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def verdict(line: dict):
    return line["best"], line["tie"], line["scores"] is None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "examples" / "hhh_alignment.jsonl"))
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--risk", type=float, default=0.01)
    ap.add_argument("--out", default="/tmp/grm-bench-adaptive", help="Working folder (the full run resumes if interrupted).")
    ap.add_argument("--model", default=None)
    ap.add_argument("--n-gpu-layers", default=None)
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recs = out / "records.jsonl"
    recs.write_text("".join(Path(args.data).read_text().splitlines(keepends=True)[: args.records]))
    model = (["--model", args.model] if args.model else []) + (["--n-gpu-layers", args.n_gpu_layers] if args.n_gpu_layers else [])
    common = [recs, "-k", args.k, "--max-tokens", args.max_tokens, "--no-cache", *model]

    full_path = out / f"full-k{args.k}-t{args.max_tokens}.jsonl"
    done = len(lines(full_path)) if full_path.exists() else 0
    _, full_wall = grm("score", *common, "-o", full_path)
    full = lines(full_path)
    full_tokens = sum(s["completion_tokens"] for x in full for s in x["samples"])
    print(f"(a) full voting@{args.k}: {len(full)} records, {sum(len(x['samples']) for x in full)} samples, {full_tokens} generated tokens, "
          f"{full_wall:.1f} s" + (f" (resumed: {done} records were already stored, so this wall time covers {len(full) - done})" if done else ""))

    rows = []
    for rule in ("exact", "stat"):
        p, _ = grm("eval", full_path, "--adaptive", rule, "--adaptive-risk", args.risk, "--json")
        point = next(c for c in json.loads(p.stdout)["grm_eval"]["adaptive"]["curve"] if c["k"] == args.k)
        rows.append((f"(b) {rule} replayed", point["agreement"], point["samples_used"], point["saved"], point["tokens_saved"], None))

    stat_path = out / f"stat-k{args.k}-t{args.max_tokens}.jsonl"
    stat_path.unlink(missing_ok=True)
    p, stat_wall = grm("score", *common, "--adaptive", "stat", "--adaptive-risk", args.risk, "-o", stat_path)
    live = {x["id"]: x for x in lines(stat_path)}
    agree = sum(verdict(live[x["id"]]) == verdict(x) for x in full) / len(full)
    used = sum(len(x["samples"]) for x in live.values())
    tokens = sum(s["completion_tokens"] for x in live.values() for s in x["samples"])
    rows.append(("(c) stat live", agree, used / len(live), 1 - used / (args.k * len(live)), 1 - tokens / full_tokens, stat_wall))

    print(f"\n{args.records} records of {Path(args.data).name}, K = {args.k}, --max-tokens {args.max_tokens}, risk {args.risk}")
    print(f"{'rule':22} {'agreement with full':>20} {'samples/record':>15} {'samples saved':>14} {'tokens saved':>13} {'wall s (full ' + format(full_wall, '.0f') + ')':>18}")
    for name, agreement, per_record, saved, tok_saved, wall in rows:
        wall_cell = f"{wall:.1f} ({wall / full_wall:.2f}x)" if wall is not None else "-"
        print(f"{name:22} {agreement:>20.1%} {per_record:>15.2f} {saved:>14.1%} {tok_saved:>13.1%} {wall_cell:>18}")
    for name, path in (("(a) full", full_path), ("(c) stat live", stat_path)):  # the engine's own counts, from the run log
        run = json.loads(Path(f"{path}.runs.jsonl").read_text(encoding="utf-8").splitlines()[-1])
        print(f"{name}: prompt tokens evaluated {run['prompt_evaluated']} of {run['prompt_tokens']}, "
              f"generated {run['generated_tokens_per_second']} tokens/s")
    goal = rows[1][1] >= 0.99 and rows[1][3] >= 0.5
    print(f"\ngoal (stat at risk {args.risk}: >= 99% of full-vote verdicts with <= 50% of the samples): {'met' if goal else 'not met'}")


if __name__ == "__main__":
    main()
