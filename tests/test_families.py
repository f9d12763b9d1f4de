"""The model families grm's users bring, on tiny random weights: `grm convert` (llama.cpp's converter),
then llama.cpp's logits against transformers', the family's chat template as grm renders it, its
end-of-turn token, and `grm score` (k=2, forced score line, expected scores) on the converted file.

The models are built by tests/families.py (hidden size 64, 2 layers; DeepSeek-V2-Lite's 27). Needs
llama.cpp's converter (`.ci/run` installs it); without it these tests are skipped with the install line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from families import FAMILIES, build, copy_without, hf_logits
from local_hub import serve_repo

# every test here builds, converts and loads transformers and llama.cpp models: in the full suite, not the fast subset
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NAMES = list(FAMILIES)

# llama.cpp (F32 weights, F32 KV cache) vs transformers (float32, eager attention), max |difference| of
# the next-token logits over every position of a 23-40 token sequence; the logits' spread is about 0.8.
# Measured: 2e-6 to 9e-6 for every family but gemma2 (1.1e-3: its soft-capping and sliding-window path).
LOGIT_TOL = {"gemma2": 5e-3}
DEFAULT_LOGIT_TOL = 1e-4

GENERATION_PROMPT = {  # what the family's template writes right before the model's answer
    "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "mistral": "[/INST]",
    "qwen2": "<|im_start|>assistant\n",
    "qwen3": "<|im_start|>assistant\n",
    "phi3": "<|assistant|>\n",
    "gemma2": "<start_of_turn>model\n",
    "deepseek_v2": "Assistant:",
}

TURN_MARKERS = {  # special tokens the rendered prompt must hold as one token each
    "llama3": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "mistral": ["[INST]", "[/INST]"],
    "qwen2": ["<|im_start|>", "<|im_end|>"],
    "qwen3": ["<|im_start|>", "<|im_end|>"],
    "phi3": ["<|user|>", "<|end|>", "<|assistant|>"],
    "gemma2": ["<start_of_turn>", "<end_of_turn>"],
    "deepseek_v2": [],  # plain-text "User:"/"Assistant:" turns
}


def _converter_or_skip():
    from grm_cli.errors import ModelError
    from grm_cli.models.convert import converter_dir

    try:
        return converter_dir()
    except ModelError as e:  # README's second command and .ci/run install it: missing is a failure, not a skip
        pytest.fail(str(e))


def grm(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "grm_cli.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory):
    _converter_or_skip()
    root = tmp_path_factory.mktemp("families")
    return {n: build(n, root / n) for n in NAMES}


@pytest.fixture(scope="session")
def converted(hf_folders, tmp_path_factory):
    """Each family converted once with `grm convert --quant F32` (the command, as users run it)."""
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path_factory.mktemp("families-gguf")
    paths = {n: out / f"{n}.gguf" for n in hf_folders}

    def convert(n: str) -> subprocess.CompletedProcess:
        return grm("convert", str(hf_folders[n]), "--to", str(paths[n]), "--quant", "F32")

    with ThreadPoolExecutor(2) as pool:  # child processes, mostly importing and writing: two at a time on 2 cores
        done = dict(zip(paths, pool.map(convert, paths)))
    for n, p in done.items():
        assert p.returncode == 0, f"{n}: {p.stderr[-3000:]}"
        assert p.stdout.strip() == str(paths[n])
    return paths


def _llama(path: Path, **kw):
    from llama_cpp import Llama

    return Llama(str(path), n_ctx=256, verbose=False, n_threads=2, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_transformers(name, converted, hf_folders):
    from gguf import GGUFReader

    fam = FAMILIES[name]
    arch = GGUFReader(converted[name]).fields["general.architecture"].contents()
    assert arch == fam.arch
    llm = _llama(converted[name], logits_all=True, type_k=0, type_v=0)  # F32 KV: the converter's error alone
    text = "User: What is 12 + 30? Response 1 is better than Response 2.\n\nScores: \\boxed{7, 3}"
    ids = llm.tokenize(text.encode(), add_bos=bool(fam.bos), special=True)
    llm.eval(ids)
    ours = np.array(llm.scores[: len(ids)])
    theirs, hidden = hf_logits(hf_folders[name], ids, hidden=True)
    diff = float(np.abs(ours - theirs).max())
    assert diff < LOGIT_TOL.get(name, DEFAULT_LOGIT_TOL), f"{name}: max |logit difference| {diff:.2e}"
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    # the meta RM's input: the last token's final-norm hidden state, through grm's own reader (default
    # F16 KV cache, so a looser bound; measured below 1e-2 against values of about 1)
    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.llama import LlamaEngine

    h = HiddenStates(LlamaEngine(converted[name], n_ctx=512), n_ctx=512).of_tokens(list(ids))
    assert h.shape == hidden.shape
    hdiff = float(np.abs(h - hidden).max())
    assert hdiff < 3e-2 * max(1.0, float(np.abs(hidden).max())), f"{name}: hidden state differs by {hdiff:.2e}"


@pytest.mark.parametrize("name", NAMES)
def test_template_bos_and_end_of_turn(name, converted):
    import llama_cpp

    from grm_cli.core.prompt import load_template, render
    from grm_cli.core.records import record_from_dict
    from grm_cli.engine.llama import LlamaEngine

    fam = FAMILIES[name]
    eng = LlamaEngine(converted[name], n_ctx=4096)
    rec = record_from_dict({"prompt": "Divide 45 by 9", "responses": ["22.5", "5"]})
    prompt = render(load_template("pointwise"), rec)
    text = eng.render(prompt.messages, prompt.assistant_prefix)
    # the answer pre-fill sits right after the family's own generation prompt
    assert text.endswith(GENERATION_PROMPT[name] + prompt.assistant_prefix), text[-200:]
    toks = eng._tokens(text)
    bos = eng.llm.token_bos()
    if fam.bos and fam.add_bos:  # Phi-3.5's template writes no BOS (and its tokenizer adds none)
        assert toks[0] == bos and toks.count(bos) == 1, "exactly one BOS, at the start"
    else:
        assert bos < 0 or bos not in toks
    if name == "gemma2":
        assert "system" not in text and text.count("<start_of_turn>") == 2 and "<start_of_turn>user\n" in text
    # the turn markers are single special tokens, not spelled out in pieces
    for marker in TURN_MARKERS[name]:
        marker_ids = eng.llm.tokenize(marker.encode(), add_bos=False, special=True)
        assert len(marker_ids) == 1 and marker_ids[0] in toks, (marker, marker_ids)
    # the family's end-of-turn token ends generation in llama.cpp...
    eot = eng.llm.tokenize(fam.eos.encode(), add_bos=False, special=True)
    assert len(eot) == 1
    vocab = llama_cpp.llama_model_get_vocab(eng.llm.model)
    assert llama_cpp.llama_vocab_is_eog(vocab, eot[0]), f"{fam.eos} is not end-of-generation"
    # ...and a model that writes it stops there (a huge bias on it: the first token is end-of-turn)
    short = eng._tokens(eng.render([{"role": "user", "content": "Hi"}]))  # a short prompt: the stop is what counts
    out = eng.llm.create_completion(short, max_tokens=8, logit_bias={eot[0]: 100.0}, temperature=0.0)
    assert out["choices"][0]["finish_reason"] == "stop" and out["choices"][0]["text"] == ""


@pytest.mark.parametrize("name", NAMES)
def test_grm_score_k2_forced_and_expected(name, converted, tmp_path, short_template):
    data = tmp_path / "two.jsonl"
    data.write_text(
        json.dumps({"id": "a", "prompt": "Divide 45 by 9", "responses": ["22.5", "5"], "preferred": 1}) + "\n"
        + json.dumps({"id": "b", "prompt": "Capital of France?", "responses": ["Paris", "Rome"], "preferred": 0}) + "\n")
    p = grm("score", str(data), "--model", str(converted[name]), "-k", "2", "--max-tokens", "8", "--ctx", "2048",
            "--template", str(short_template),
            "--score-mode", "expected", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    for r in rows:
        assert len(r["samples"]) == 2 and r["unparsed"] == 0
        for s in r["samples"]:
            assert s["parse_error"] is None and len(s["scores"]) == 2
            assert all(1 <= v <= 10 for v in s["scores"])
            assert s["expected"] is not None and all(1 <= v <= 10 for v in s["expected"])


@pytest.mark.parametrize("name", ["llama3", "gemma2", "deepseek_v2"])
def test_expected_score_digit_trie_per_vocabulary(name, converted):
    """At a score position the probe's candidates are the vocabulary's own tokens for each value: "10" is
    "1","0" in the SentencePiece vocabularies here (digits split) and one token in GPT-2's BPE; the
    distribution over 1..10 sums to 1."""
    from grm_cli.engine.llama import LlamaEngine
    from grm_cli.engine.probe import ScoreProbe

    eng = LlamaEngine(converted[name], n_ctx=1024)
    probe = ScoreProbe(eng, 1, 10)
    messages = [{"role": "user", "content": "Score the two responses 1-10."}]
    text = "Analysis: fine.\nScores: \\boxed{"
    base = eng._tokens(eng.render(messages, text))
    cand = probe._candidates(messages, text, base, probe.values)
    assert len(cand["10"]) == (1 if FAMILIES[name].tokenizer == "gpt2" else 2)
    assert all(len(cand[str(v)]) == 1 for v in range(1, 10))
    if len(cand["10"]) == 2:
        assert cand["10"][0] == cand["1"][0]  # the trie branches after "1"
    dist = probe._distribution(base, 0, probe._extend(base, 0), cand)
    assert abs(sum(dist.values()) - 1.0) < 1e-9 and all(p >= 0 for p in dist.values())
    (e,) = probe.expected(messages, text + "7}", [(len(text), len(text) + 1)])
    assert 1.0 <= e <= 10.0 and abs(e - sum(int(v) * p for v, p in dist.items())) < 1e-2  # same numbers, decoded in other chunks


# -- grm convert's errors -----------------------------------------------------------------------------


def test_convert_quantizes_with_llama_cpp(hf_folders, tmp_path):
    dst2 = tmp_path / "q4.gguf"
    p = grm("convert", str(hf_folders["llama3"]), "--to", str(dst2), "--quant", "Q4_K_M")
    assert p.returncode == 0, p.stderr[-2000:]
    from gguf import GGUFReader

    ftype = int(GGUFReader(dst2).fields["general.file_type"].contents())
    import llama_cpp

    assert ftype == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert [f.name for f in tmp_path.iterdir()] and not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def _no_partial(folder: Path, name: str) -> None:
    left = [f.name for f in folder.iterdir()]
    assert name not in left and not [f for f in left if f.startswith(".")], left


def test_convert_errors(hf_folders, tmp_path):
    good = hf_folders["qwen2"]
    no_cfg = copy_without(good, tmp_path / "nocfg", "config.json")
    no_w = copy_without(good, tmp_path / "now", "model.safetensors")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForCausalLM"], "model_type": "nosuch"}))
    (unknown / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        ((str(no_cfg),), 2, "no config.json"),
        ((str(no_w),), 2, "no weights"),
        ((str(unknown),), 2, "NoSuchModelForCausalLM"),
        ((str(good), "--quant", "Q7_Z"), 2, "no such quantization type"),
        ((str(tmp_path / "absent"),), 2, "no such model folder"),
        (("hf://not a repo",), 2, "expected a model folder or hf://owner/repo"),
    ]
    for args, code, words in cases:
        p = grm("convert", *args, "--to", str(out / "m.gguf"))
        assert p.returncode == code, (args, p.returncode, p.stderr[-2000:])
        assert words in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
        assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) == 1, p.stderr
        _no_partial(out, "m.gguf")


def test_convert_refuses_an_unknown_bpe_tokenizer(hf_folders, tmp_path):
    """A BPE tokenizer whose pre-tokenizer hash llama.cpp's converter does not know: one line, exit 2."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder = copy_without(hf_folders["qwen2"], tmp_path / "bpe", "tokenizer.model")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["a home-made tokenizer, 12 + 30 = 42"] * 10, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    tok.save(str(folder / "tokenizer.json"))
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.update(tokenizer_class="PreTrainedTokenizerFast", added_tokens_decoder={})
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    p = grm("convert", str(folder), "--to", str(tmp_path / "m.gguf"))
    assert p.returncode == 2 and "BPE pre-tokenizer" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    _no_partial(tmp_path, "m.gguf")


def test_convert_full_disk_leaves_nothing(hf_folders, tmp_path, monkeypatch):
    """A device without room: refused before the work starts; one that fills up during the write: the
    temp file is removed and nothing appears under the final name."""
    from grm_cli.errors import InputError
    from grm_cli.models import convert as conv

    monkeypatch.setattr(conv, "_free_bytes", lambda folder: 1000)
    with pytest.raises(InputError, match="MiB free"):
        conv.convert(hf_folders["qwen2"], tmp_path / "m.gguf", progress=False)
    _no_partial(tmp_path, "m.gguf")
    monkeypatch.undo()

    def full(folder, out, outtype, arch):
        out.write_bytes(b"GGUF" + b"\0" * 100)  # part-written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(conv, "_run_converter", full)
    with pytest.raises(InputError, match="no space left"):
        conv.convert(hf_folders["qwen2"], tmp_path / "m.gguf", progress=False)
    _no_partial(tmp_path, "m.gguf")


def test_failed_convert_keeps_the_old_file(hf_folders, tmp_path):
    dst = tmp_path / "m.gguf"
    dst.write_bytes(b"GGUF old")
    p = grm("convert", str(tmp_path / "absent"), "--to", str(dst))
    assert p.returncode == 2 and dst.read_bytes() == b"GGUF old"


# -- aliases that convert, against a local server speaking the hub's protocol --------------------------

COMMIT = "feed" + "0" * 36


@contextmanager
def local_hub(folder: Path, repo: str = "owner/grm"):
    """A local hub serving `folder` as the safetensors repo `repo`; yields (endpoint, GETs, file count)."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with serve_repo(repo, files, COMMIT) as (endpoint, gets):
        yield endpoint, gets, len(files)


@pytest.fixture
def hub_repo(hf_folders):
    """The local hub serving hf_folders["llama3"] as owner/grm."""
    with local_hub(hf_folders["llama3"]) as hub:
        yield hub


def test_alias_downloads_and_converts_once(hub_repo, tmp_path, short_template):
    endpoint, gets, n_files = hub_repo
    aliases = tmp_path / "models.yaml"
    aliases.write_text("tiny-grm:\n  source: hf://owner/grm\n  convert: Q4_K_M\n  description: test GRM\n")
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "GRM_MODELS": str(aliases),
           "GRM_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    # grm convert hf://owner/repo downloads into huggingface-hub's cache...
    direct = tmp_path / "direct.gguf"
    c = grm("convert", "hf://owner/grm", "--to", str(direct), "--quant", "Q8_0", env=env)
    assert c.returncode == 0 and c.stdout.strip() == str(direct), c.stderr[-2000:]
    assert len(gets) == n_files
    missing = grm("convert", "hf://nobody/nothing", "--to", str(tmp_path / "x.gguf"), env=env)
    assert missing.returncode == 3 and "no such repository" in missing.stderr and "Traceback" not in missing.stderr
    # ...which the alias then uses: converted once, nothing downloaded again
    p = grm("pull", "tiny-grm", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    path = Path(p.stdout.strip())
    assert path == tmp_path / "cache" / "converted" / "owner--grm" / COMMIT / "grm.Q4_K_M.gguf"
    assert "converting hf://owner/grm" in p.stderr
    assert sorted(gets) == sorted(set(gets)) and len(gets) == n_files  # every file, once
    mtime = path.stat().st_mtime_ns
    # again: nothing downloaded, nothing converted
    q = grm("pull", "tiny-grm", env=env)
    assert q.returncode == 0 and Path(q.stdout.strip()) == path and "converting" not in q.stderr
    assert len(gets) == n_files and path.stat().st_mtime_ns == mtime
    # offline: the cache answers
    r = grm("pull", "tiny-grm", env={**env, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0 and Path(r.stdout.strip()) == path, r.stderr[-2000:]
    # and it scores
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"prompt": "Divide 45 by 9", "responses": ["22.5", "5"], "preferred": 1}) + "\n")
    s = grm("score", str(data), "--model", "tiny-grm", "-k", "2", "--max-tokens", "8", "--ctx", "2048",
            "--template", str(short_template), "--json", env=env)
    assert s.returncode == 0, s.stderr[-2000:]
    assert json.loads(s.stdout)["unparsed"] == 0 and len(gets) == n_files


def test_bad_convert_alias_is_a_clear_error(tmp_path):
    aliases = tmp_path / "models.yaml"
    aliases.write_text("bad:\n  source: hf://owner/grm\n  convert: Q7_Z\n")
    p = grm("pull", "bad", env={"GRM_MODELS": str(aliases)})
    assert p.returncode == 3 and "no such quantization type" in p.stderr and "Traceback" not in p.stderr
    aliases.write_text("bad:\n  source: hf://owner/grm/file.gguf\n  convert: Q4_K_M\n")
    p = grm("pull", "bad", env={"GRM_MODELS": str(aliases)})
    assert p.returncode == 3 and "hf://owner/repo" in p.stderr


def test_shipped_aliases_parse():
    from grm_cli.models.registry import load_registry

    aliases = load_registry()
    assert aliases["deepseek-grm-16b"].convert == "Q4_K_M" and aliases["deepseek-grm-16b"].source == "hf://BBQGOD/DeepSeek-GRM-16B"
    assert aliases["deepseek-grm-27b"].source == "hf://BBQGOD/DeepSeek-GRM-27B"


# -- LoRA adapters back into llama.cpp, per family ------------------------------------------------------

# What `grm train` adapts per architecture by default is models/lora_targets.py's (narrowed for phi3's fused
# projections and deepseek2, where llama.cpp runs an adapter only on o_proj of the attention).


@pytest.fixture(scope="module")
def train_data(tmp_path_factory, short_template) -> tuple[Path, Path]:
    """Labelled records and accepted RFT trajectories (conftest's builders, smaller: 8 records, 2 each)."""
    from conftest import write_accepted, write_arith

    root = tmp_path_factory.mktemp("train-data")
    data = write_arith(root / "arith.jsonl", 8)
    return data, write_accepted(data, short_template, root / "accepted.jsonl", 2)


@pytest.mark.parametrize("name", NAMES)
def test_trained_adapter_moves_llama_cpp_as_transformers(name, converted, hf_folders, train_data, short_template, tmp_path):
    """`grm train rft` (on accepted trajectories, in the family's own chat template) and `grm train rl`
    on top of it, a few steps each on the family's HF folder, then `grm export`: llama.cpp's logits with
    the exported adapter, and those of the `--merge`d file, equal transformers' with the trained LoRAs
    (the q/k row permutation where the converter permutes, the family's tensor names elsewhere)."""
    import torch
    import transformers as tf
    from conftest import grm as grm_here
    from peft import PeftModel

    from grm_cli.train.base_model import read_info

    fam = FAMILIES[name]
    folder = hf_folders[name]
    data, accepted = train_data

    def run(*args):
        p = grm_here(*args)
        assert p.returncode == 0, f"grm {' '.join(map(str, args))}: {p.stderr[-3000:]}"
        return p

    common = ("-m", folder, "-t", short_template, "--lora-rank", 4, "--batch", 4, "--max-length", 512)
    run("train", "rft", data, "-o", tmp_path / "rft", "--accepted", accepted, "--steps", 4, "--lr", "3e-2", *common)
    rl = run("train", "rl", data, "-o", tmp_path / "rl", "--adapter", tmp_path / "rft" / "adapter", "--steps", 1, "--lr", "1e-2",
             "--group", 2, "--max-completion", 12, *common)
    assert "adapter" in rl.stderr
    info = read_info(tmp_path / "rl" / "adapter")
    assert info["base"]["arch"] == fam.arch and info["stacked_on"]
    run("export", tmp_path / "rl" / "adapter", "--to", tmp_path / "lora.gguf")
    run("export", tmp_path / "rl" / "adapter", "--merge", "--base", converted[name], "--quant", "F32", "--to", tmp_path / "merged.gguf")

    base = _llama(converted[name], logits_all=True, type_k=0, type_v=0)
    ids = base.tokenize(b"User: What is 12 + 30? Response 1 is better.\n\nScores: \\boxed{7, 3}", add_bos=bool(fam.bos), special=True)
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        theirs_base = model(torch.tensor([ids])).logits[0].numpy()
        merged_rft = PeftModel.from_pretrained(model, str(tmp_path / "rft" / "adapter")).merge_and_unload()
        tuned = PeftModel.from_pretrained(merged_rft, str(tmp_path / "rl" / "adapter")).eval()
        theirs = tuned(torch.tensor([ids])).logits[0].numpy()

    def ours(path, **kw):
        llm = _llama(path, logits_all=True, type_k=0, type_v=0, **kw)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    moved = float(np.abs(theirs - theirs_base).max())
    assert moved > 0.05, f"training barely moved the logits ({moved:.3f})"
    tol = 10 * LOGIT_TOL.get(name, DEFAULT_LOGIT_TOL) + 1e-3 * moved  # float32 both sides; trained weights are larger than random ones
    with_adapter = float(np.abs(ours(converted[name], lora_path=str(tmp_path / "lora.gguf")) - theirs).max())
    assert with_adapter < tol, f"{name}: adapter in llama.cpp differs from transformers by {with_adapter:.2e} (training moved logits by {moved:.2f})"
    merged_diff = float(np.abs(ours(tmp_path / "merged.gguf") - theirs).max())
    assert merged_diff < tol, f"{name}: --merge differs from transformers by {merged_diff:.2e}"


def test_deepseek2_attention_adapter_is_refused_but_merges(converted, hf_folders, tmp_path):
    """On deepseek2 llama.cpp loads an adapter on q_proj / kv_a_proj_with_mqa and applies nothing: `grm
    export` refuses those targets in one line, while `--merge` folds them in as transformers applies them."""
    import torch
    import transformers as tf
    from peft import LoraConfig, get_peft_model

    from grm_cli.errors import InputError
    from grm_cli.train.base_model import BaseInfo, save_info
    from grm_cli.train.export import read_peft_adapter, write_adapter_gguf
    from grm_cli.train.merge import merge_into_gguf

    fam = FAMILIES["deepseek_v2"]
    folder = hf_folders["deepseek_v2"]
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    cfg = model.config
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=r".*\.self_attn\.(q_proj|kv_a_proj_with_mqa)$", lora_dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.05)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    save_info(adapter, BaseInfo(ref=str(folder), kind="hf", arch=fam.arch, n_head=cfg.num_attention_heads,
                                n_head_kv=cfg.num_key_value_heads, n_layer=cfg.num_hidden_layers, gguf_fingerprint=None))
    weights = read_peft_adapter(adapter)
    with pytest.raises(InputError, match="does not apply a LoRA adapter to blk.0.attn_"):
        write_adapter_gguf(weights, tmp_path / "refused.gguf")
    assert not (tmp_path / "refused.gguf").exists()
    merged = merge_into_gguf(weights, converted["deepseek_v2"], tmp_path / "merged.gguf", quant="F32")
    base = _llama(converted["deepseek_v2"], logits_all=True, type_k=0, type_v=0)
    ids = base.tokenize(b"User: What is 12 + 30? Response 1 is better.", add_bos=True, special=True)
    peft_model.eval()
    with torch.no_grad():
        theirs = peft_model(torch.tensor([ids])).logits[0].numpy()
        with peft_model.disable_adapter():
            moved = float(np.abs(theirs - peft_model(torch.tensor([ids])).logits[0].numpy()).max())
    llm = _llama(merged, logits_all=True, type_k=0, type_v=0)
    llm.eval(ids)
    assert moved > 0.05 and float(np.abs(np.array(llm.scores[: len(ids)]) - theirs).max()) < 10 * DEFAULT_LOGIT_TOL


def test_lora_targets_per_architecture():
    """What `grm train` may adapt per architecture, as the export tests above measured it."""
    from grm_cli.errors import InputError
    from grm_cli.models.lora_targets import check_lora_targets

    assert check_lora_targets("llama", ["q_proj", "k_proj", "down_proj"]) == ("q_proj", "k_proj", "down_proj")
    with pytest.raises(InputError, match="targets that can be trained are qkv_proj, o_proj, gate_up_proj, down_proj"):
        check_lora_targets("phi3", ["q_proj", "o_proj"])
    with pytest.raises(InputError, match=r"q_proj: llama.cpp cannot run an adapter on them for deepseek2.*only with `grm export --merge`"):
        check_lora_targets("deepseek2", ["q_proj", "o_proj"])
    assert check_lora_targets("deepseek2", ["q_proj", "o_proj"], merge=True) == ("q_proj", "o_proj")
    with pytest.raises(InputError, match="gate_proj"):
        check_lora_targets("deepseek2", ["gate_proj"], merge=True)
    assert check_lora_targets("somethingelse", ["x"]) == ("x",)


# -- the released kind of meta RM: a scalar reward model (value head) over a gemma2 backbone ---------------
def _scalar_meta_rm(hf_folders, dest: Path, *, labels: int = 1, seed: int = 3) -> Path:
    """A random Gemma2ForSequenceClassification with one label (the class a DeepSeek-GRM-27B-MetaRM-like
    value-head RM has in transformers), with the gemma2 tokenizer and chat template."""
    import shutil

    import torch
    import transformers as tf

    src = hf_folders["gemma2"]
    cfg = tf.AutoConfig.from_pretrained(src)
    cfg.num_labels = labels
    cfg.architectures = ["Gemma2ForSequenceClassification"]
    torch.manual_seed(seed)
    model = tf.Gemma2ForSequenceClassification(cfg)
    with torch.no_grad():
        model.score.weight.normal_(0.0, 1.0)  # a head that tells trajectories apart, not one near zero
    model.save_pretrained(dest, safe_serialization=True)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(src / name, dest / name)
    return dest


def _their_ratings(folder: Path, texts: list[str]) -> list[float]:
    import torch
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(folder)
    model = tf.AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for t in texts:
        ids = tok(t, add_special_tokens=False, return_tensors="pt")["input_ids"]
        assert int((ids[0] == tok.bos_token_id).sum()) == 1, "the meta layout holds exactly one BOS"
        with torch.no_grad():
            out.append(float(torch.sigmoid(model(input_ids=ids).logits[0, 0])))
    return out


def test_scalar_meta_rm_guides_the_vote(hf_folders, converted, tmp_path, short_template):
    """`--meta-rm FOLDER` with a scalar RM: every parsed sample is rated by transformers over the meta
    layout in the RM's own chat template, and only the k_meta best-rated samples are summed."""
    from grm_cli.core.prompt import load_template, render_meta
    from grm_cli.core.records import record_from_dict

    meta = _scalar_meta_rm(hf_folders, tmp_path / "metarm")
    rows = [{"id": "a", "prompt": "Divide 45 by 9", "responses": ["22.5", "5"], "preferred": 1},
            {"id": "b", "prompt": "Capital of France?", "responses": ["Paris", "Rome", "Lyon"], "preferred": 0}]
    data = tmp_path / "recs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = grm("score", str(data), "--model", str(converted["gemma2"]), "-k", "4", "--k-meta", "2", "--meta-rm", str(meta),
            "--max-tokens", "8", "--ctx", "2048", "--template", str(short_template), "--json", "--no-cache")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Gemma2ForSequenceClassification" in p.stderr and "meta RM on cpu" in p.stderr
    tmpl = load_template(str(short_template))
    results = [json.loads(line) for line in p.stdout.splitlines()]
    for row, res in zip(rows, results):
        rec = record_from_dict(row, "recs.jsonl", 1)
        samples = [s for s in res["samples"] if s["scores"] is not None]
        assert len(samples) == 4
        tok_texts = []
        import transformers as tf

        tok = tf.AutoTokenizer.from_pretrained(meta)
        for s in samples:
            m = render_meta(tmpl, rec, s["order"], s["text"])
            tok_texts.append(tok.apply_chat_template([*m.messages, {"role": "assistant", "content": m.assistant_prefix}], tokenize=False))
        assert all(t.count("<start_of_turn>model\n") == 1 and "<start_of_turn>system" not in t for t in tok_texts)
        theirs = _their_ratings(meta, tok_texts)
        ours = [s["meta_score"] for s in samples]
        assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-4, (ours, theirs)
        assert len(set(round(x, 6) for x in ours)) > 1, "the random head rates every trajectory alike: the test would not see a wrong choice"
        kept = sorted(range(4), key=lambda i: (-theirs[i], i))[:2]
        assert [s["meta_kept"] for s in samples] == [i in kept for i in range(4)]
        totals = [sum(samples[i]["scores"][j] for i in kept) for j in range(len(row["responses"]))]
        assert res["scores"] == totals and res["votes"] == 2
        assert res["run"]["meta_rm"].endswith(":metarm")


def test_scalar_meta_rm_from_the_hub_and_its_refusals(hf_folders, tmp_path):
    """hf://owner/repo through huggingface-hub (local hub server); wrong kinds of model refused in one line."""
    from grm_cli.errors import InputError
    from grm_cli.metarm.scalar import check_source, open_source

    meta = _scalar_meta_rm(hf_folders, tmp_path / "metarm")
    with local_hub(meta, "owner/metarm") as (endpoint, gets, n_files):
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        code = ("import sys; from grm_cli.metarm.scalar import open_source, ScalarMetaRM; from grm_cli.core.prompt import load_template; "
                "from grm_cli.core.records import record_from_dict; s = open_source(sys.argv[1], progress=False); "
                "r = ScalarMetaRM(s, load_template('pointwise')); rec = record_from_dict({'prompt': 'q', 'responses': ['a', 'b']}, 'x', 1); "
                "print(s.architecture, s.model_fingerprint, r.rate(rec, [((0, 1), 'Scores: 1, 2')])[0])")
        q = subprocess.run([sys.executable, "-c", code, "hf://owner/metarm"], capture_output=True, text=True, env={**__import__("os").environ, **env}, timeout=300)
        assert q.returncode == 0, q.stderr[-2000:]
        arch, fingerprint, rating = q.stdout.split()
        assert arch == "Gemma2ForSequenceClassification" and fingerprint == check_source(meta, str(meta)).model_fingerprint
        assert 0.0 < float(rating) < 1.0 and len(gets) == n_files
    # the wrong kinds, each one line naming what was expected
    with pytest.raises(InputError, match="ForSequenceClassification model with one label"):
        open_source(str(hf_folders["gemma2"]))  # a causal LM, not a value-head RM
    two = _scalar_meta_rm(hf_folders, tmp_path / "two", labels=2)
    with pytest.raises(InputError, match="2 labels"):
        open_source(str(two))
    pickled = copy_without(meta, tmp_path / "pickled", "model.safetensors")
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(InputError, match="is a pickle, and grm never unpickles"):
        open_source(str(pickled))
    remote = copy_without(meta, tmp_path / "remote", "config.json")
    cfg = json.loads((meta / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**cfg, "architectures": ["MyRewardForSequenceClassification"], "auto_map": {"AutoModel": "x.MyReward"}}))
    with pytest.raises(InputError, match="never runs a model's own code"):
        open_source(str(remote))
    no_template = copy_without(meta, tmp_path / "plain", "tokenizer_config.json")
    with pytest.raises(InputError, match="no chat template"):
        open_source(str(no_template))
    p = grm("score", str(ROOT / "examples" / "llmbar.jsonl"), "-k", "1", "--meta-rm", str(two))
    assert p.returncode == 2 and "-k 2 or more" in p.stderr and "Traceback" not in p.stderr
    p = grm("score", str(ROOT / "examples" / "llmbar.jsonl"), "-k", "2", "--meta-rm", str(two))
    assert p.returncode == 2 and "2 labels" in p.stderr and "Traceback" not in p.stderr
