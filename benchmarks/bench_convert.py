"""`grm convert` on a random ~0.5B-parameter model of the Gemma-2 shape: wall time and peak memory of
the conversion to F16 and of the conversion plus quantization to Q4_K_M (a figure for README, not a test).

The model: Gemma2ForCausalLM with Gemma-2-2B's vocabulary size (256,000, tied embeddings), hidden size
1,152, 8 layers, 4 query heads of 256 and 1 KV head, MLP 6,912, saved in bf16 as real checkpoints are
(about 1 GB). The tokenizer is tests/families.py's tiny SentencePiece model; the converter pads the
vocabulary to 256,000 entries. Each `grm convert` runs as its own process; peak memory is the largest
resident set of that process and its children (the converter runs as a child of grm).

    python benchmarks/bench_convert.py                 # writes into a temporary folder, prints JSON
    python benchmarks/bench_convert.py --keep DIR      # keep the model and the GGUF files in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def build_model(folder: Path) -> int:
    import torch
    import transformers as tf
    from families import FAMILIES, TEMPLATES, _spm

    folder.mkdir(parents=True, exist_ok=True)
    fam = FAMILIES["gemma2"]
    _spm(folder, fam)
    cfg = tf.Gemma2Config(vocab_size=256000, hidden_size=1152, intermediate_size=6912, num_hidden_layers=8,
                          num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
                          sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                          max_position_embeddings=8192, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                          tie_word_embeddings=True)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": (TEMPLATES / fam.template).read_text(encoding="utf-8"), "add_bos_token": True,
        "bos_token": "<bos>", "eos_token": "<end_of_turn>", "pad_token": "<pad>", "tokenizer_class": "GemmaTokenizer"}))
    return n


# Runs `grm convert` as its child and prints that child's (and its descendants') peak RSS: one fresh
# measurement per run (RUSAGE_CHILDREN is the maximum over every child a process ever waited for).
_WRAP = """
import resource, subprocess, sys
rc = subprocess.run([sys.executable, "-m", "grm_cli.cli", "convert", *sys.argv[1:]], stdout=subprocess.DEVNULL).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed_convert(src: Path, dst: Path, quant: str) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _WRAP, str(src), "--to", str(dst), "--quant", quant], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rc, peak_kib = (int(x) for x in p.stdout.split()[-2:])
    if rc != 0:
        raise SystemExit(f"grm convert failed ({rc}): {p.stderr[-2000:]}")
    return {"quant": quant, "wall_s": round(wall, 1), "peak_rss_mib": round(peak_kib / 1024), "gguf_mib": round(dst.stat().st_size / 2**20)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, help="folder to keep the model and GGUF files in")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-convert-"))
    t0 = time.perf_counter()
    n = build_model(work / "gemma2-0.5b")
    built = time.perf_counter() - t0
    out = {"params": n, "safetensors_mib": round(sum(f.stat().st_size for f in (work / "gemma2-0.5b").glob("*.safetensors")) / 2**20),
           "build_s": round(built, 1), "cores": os.cpu_count(), "runs": []}
    out["runs"].append(timed_convert(work / "gemma2-0.5b", work / "gemma2-0.5b.Q4_K_M.gguf", "Q4_K_M"))
    out["runs"].append(timed_convert(work / "gemma2-0.5b", work / "gemma2-0.5b.F16.gguf", "F16"))
    print(json.dumps(out, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
