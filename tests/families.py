"""Tiny random-weight Hugging Face models, one per family grm's users bring, for `grm convert` tests.

Each folder is what a real checkpoint looks like to llama.cpp's converter: config.json with the family's
architecture, model.safetensors (float32, hidden size 64, 2 layers), a tokenizer the converter accepts
and the family's real chat template in tokenizer_config.json (tests/fixtures/chat_templates, sources
in its README).

Tokenizers: SentencePiece families (llama, mistral, phi3, gemma2, and qwen2/qwen3, whose converter
tries a tokenizer.model first) get a ~600-piece SPM trained here in about a second, with the family's
turn markers as user-defined pieces and its BOS/EOS as the SPM control pieces. deepseek_v2 goes
through the converter's BPE path, which refuses any tokenizer whose pre-tokenizer hash it does not
know, so it gets GPT-2's BPE (tests/fixtures/gpt2-tokenizer.json.gz: read by transformers out of
llama.cpp's models/ggml-vocab-gpt-2.gguf and saved as tokenizer.json; the converter knows its hash)
plus DeepSeek's two special tokens.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = FIXTURES / "chat_templates"

_CORPUS = """The quick brown fox jumps over the lazy dog. Response 1 is better than Response 2 because it is
accurate, helpful and concise. Scores: \\boxed{7, 3}. Specific criteria: correctness, clarity, safety.
Analysis: the first answer explains the steps; the second one makes an arithmetic mistake.
User question: what is 12 + 30? Answer: 42. 0 1 2 3 4 5 6 7 8 9 10. Principles, critique, score.
"""


@dataclass(frozen=True)
class Family:
    name: str  # our name (test ids, README table)
    arch: str  # llama.cpp's general.architecture after conversion
    template: str  # file under fixtures/chat_templates
    bos: str | None  # the BOS text, or None when the family has none
    eos: str  # the end-of-turn token generation stops at
    specials: tuple[str, ...] = ()
    add_bos: bool = True
    tokenizer: str = "spm"  # or "gpt2"
    judges: str = ""  # the real models of this family grm users run
    spm_eos: str | None = None  # the SentencePiece EOS piece, when it is not the end-of-turn token
    extra: dict = field(default_factory=dict)


FAMILIES = {
    "llama3": Family("llama3", "llama", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>",
                     ("<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>", "<|eom_id|>", "<|python_tag|>"),
                     judges="Selene-1-Mini, Skywork-Critic (Llama-3.1)"),
    "mistral": Family("mistral", "llama", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>",
                      ("[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
                      judges="Prometheus-7B-v2 (Mistral-7B)"),
    "qwen2": Family("qwen2", "qwen2", "Qwen-Qwen2.5-7B-Instruct.jinja", None, "<|im_end|>",
                    ("<|im_start|>", "<|endoftext|>", "<tool_call>", "</tool_call>"), add_bos=False,
                    judges="Qwen2.5-based judges"),
    "qwen3": Family("qwen3", "qwen3", "Qwen-Qwen3-0.6B.jinja", None, "<|im_end|>",
                    ("<|im_start|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>"), add_bos=False,
                    judges="Qwen3-based judges"),
    "phi3": Family("phi3", "phi3", "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|end|>",
                   ("<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>", "<|end|>"), add_bos=False,
                   judges="Flow-Judge-v0.1 (Phi-3.5-mini)", spm_eos="</s>"),
    "gemma2": Family("gemma2", "gemma2", "google-gemma-2-2b-it.jinja", "<bos>", "<end_of_turn>",
                     ("<start_of_turn>", "<eos>"), judges="DeepSeek-GRM-27B (Gemma-2-27B)"),
    "deepseek_v2": Family("deepseek_v2", "deepseek2", "deepseek-ai-DeepSeek-V2-Lite-Chat.jinja",
                          "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", (), tokenizer="gpt2",
                          judges="DeepSeek-GRM-16B (DeepSeek-V2-Lite)"),
}


def _spm(folder: Path, fam: Family) -> int:
    """Train a tiny SentencePiece model into folder/tokenizer.model; returns its vocabulary size."""
    import io

    import sentencepiece as spm

    pad = "<pad>" if fam.name == "gemma2" else None
    eos = "<eos>" if fam.name == "gemma2" else (fam.spm_eos or fam.eos)
    user = [s for s in fam.specials if s not in (eos,)]
    if fam.name == "gemma2":
        user = [s for s in user if s != "<eos>"] + ["<end_of_turn>"]
    # the end-of-turn token must exist: for most families it is the SPM EOS itself
    bos = fam.bos or "<s>"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS.splitlines() * 20), model_writer=model, vocab_size=600,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3 if pad else -1,
        unk_piece="<unk>", bos_piece=bos, eos_piece=eos, **({"pad_piece": pad} if pad else {}),
        user_defined_symbols=user, hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return sp.get_piece_size()


def _gpt2(folder: Path, fam: Family) -> tuple[int, int, int]:
    """GPT-2's BPE plus the family's BOS/EOS as special added tokens; (vocab size, bos id, eos id)."""
    data = json.loads(gzip.decompress((FIXTURES / "gpt2-tokenizer.json.gz").read_bytes()))
    n = len(data["model"]["vocab"])
    ids = {}
    for i, tok in enumerate([fam.bos, fam.eos]):
        ids[tok] = n + i
        data["added_tokens"].append({"id": n + i, "content": tok, "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": True})
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return n + 2, ids[fam.bos], ids[fam.eos]


def _config(fam: Family, vocab: int, bos_id: int | None, eos_id: int, pad_id: int | None):
    import transformers as tf

    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, tie_word_embeddings=False,
                  initializer_range=0.1)
    if fam.name == "llama3":
        return tf.LlamaConfig(**common, rms_norm_eps=1e-5, rope_theta=500000.0,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 1024})
    if fam.name == "mistral":
        return tf.MistralConfig(**common, head_dim=16, sliding_window=None, rope_theta=1e6)
    if fam.name == "qwen2":
        return tf.Qwen2Config(**common, rope_theta=1e6)
    if fam.name == "qwen3":
        return tf.Qwen3Config(**common, head_dim=16, rope_theta=1e6)
    if fam.name == "phi3":
        common.update(num_key_value_heads=4)
        return tf.Phi3Config(**common, rope_theta=10000.0, original_max_position_embeddings=2048)
    if fam.name == "gemma2":
        common.update(tie_word_embeddings=True)  # as in the real Gemma-2
        # query_pre_attn_scalar, soft-capping and sliding-window layers are what set Gemma-2 apart
        return tf.Gemma2Config(**common, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                               final_logit_softcapping=30.0, attn_logit_softcapping=50.0)
    if fam.name == "deepseek_v2":
        # DeepSeek-V2-Lite's layout: MLA without q compression (q_lora_rank null), a 512->32 kv
        # compression, MoE with 2 shared experts, top-6 of 64 -> top-2 of 4 here, first layer dense.
        # llama.cpp (0.3.36's build) tells V2-Lite (no q compression) from V2 by its 27 layers.
        common.update(num_key_value_heads=4, num_hidden_layers=27)
        return tf.DeepseekV2Config(**common, moe_intermediate_size=32, n_routed_experts=4, n_shared_experts=2,
                                   num_experts_per_tok=2, first_k_dense_replace=1, moe_layer_freq=1,
                                   kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=8, qk_nope_head_dim=16,
                                   v_head_dim=16, topk_method="greedy", n_group=1, topk_group=1,
                                   routed_scaling_factor=1.0, norm_topk_prob=False, rope_theta=10000.0)
    raise KeyError(fam.name)


def build(name: str, folder: Path, seed: int = 0) -> Path:
    """Write the tiny model of family `name` into `folder` (created); returns the folder."""
    import torch
    import transformers as tf

    fam = FAMILIES[name]
    folder.mkdir(parents=True, exist_ok=True)
    if fam.tokenizer == "gpt2":
        vocab, bos_id, eos_id = _gpt2(folder, fam)
        pad_id = None
    else:
        vocab = _spm(folder, fam)
        bos_id, eos_id = 1, 2
        pad_id = 3 if name == "gemma2" else None
    cfg = _config(fam, vocab, bos_id if fam.bos else None, eos_id, pad_id)
    torch.manual_seed(seed)
    with torch.no_grad():
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        # random norm weights too (they start at 1 or 0): a converter that drops Gemma's +1 shows
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
            if "e_score_correction_bias" in n:
                p.zero_()
    model.save_pretrained(folder, safe_serialization=True)
    tok_cfg = {
        "chat_template": (TEMPLATES / fam.template).read_text(encoding="utf-8"),
        "add_bos_token": fam.add_bos, "add_eos_token": False,
        "bos_token": fam.bos, "eos_token": fam.eos,
        "model_max_length": 2048,
        "tokenizer_class": "LlamaTokenizer" if fam.tokenizer == "spm" else "PreTrainedTokenizerFast",
        "added_tokens_decoder": {},
    }
    if fam.tokenizer == "spm":
        # the turn markers are control tokens (CONTROL in the GGUF), as in the real tokenizers
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        for s in set(fam.specials) | {fam.eos} | ({fam.bos} if fam.bos else set()) | ({"<end_of_turn>"} if name == "gemma2" else set()):
            i = sp.piece_to_id(s)
            if i != sp.unk_id():
                tok_cfg["added_tokens_decoder"][str(i)] = {"content": s, "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False}
        if name == "gemma2":
            tok_cfg["pad_token"] = "<pad>"
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=1, ensure_ascii=False), encoding="utf-8")
    gen = {"bos_token_id": bos_id if fam.bos else None, "eos_token_id": eos_id}
    (folder / "generation_config.json").write_text(json.dumps(gen), encoding="utf-8")
    return folder


def hf_logits(folder: Path, ids: list[int], *, hidden: bool = False):
    """transformers' logits (float32, eager attention) for one sequence of token ids: [len(ids), vocab];
    with hidden=True also the last token's final-norm hidden state (what the meta RM reads)."""
    import torch
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=hidden)
    logits = out.logits[0].numpy()
    return (logits, out.hidden_states[-1][0, -1].numpy()) if hidden else logits


def copy_without(folder: Path, dest: Path, *names: str) -> Path:
    shutil.copytree(folder, dest)
    for n in names:
        (dest / n).unlink()
    return dest
