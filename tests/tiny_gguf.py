"""Build a tiny, randomly initialised llama-architecture GGUF model for tests.

Why this exists: the ``grm`` engine runs reward models through llama.cpp
(``llama-cpp-python``).  Unit tests of the engine need *a* model that llama.cpp
really loads, tokenizes with, samples from (including grammar-constrained
sampling) and applies a chat template for -- but downloading a real model is
slow, large and needs network access.  ``write_tiny_gguf`` writes a ~100 KB
model in a few milliseconds instead.  Its outputs are random noise, so tests
may only rely on structural properties (grammar conformance, tokenizer
round-trips, determinism for a fixed seed), never on what it "says".

Details:
* architecture ``llama``: 2 layers, n_embd 64, 4 query heads, 2 KV heads,
  feed-forward 128, all tensors f32, rope over the full 16-dim head;
* tokenizer ``gpt2`` (byte-level BPE): the 256 byte tokens of GPT-2's
  byte-to-unicode table, a few merges for common English pairs (never digits),
  and the control tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``
  (bos = ``<|im_start|>``, eos = ``<|im_end|>``, no automatic BOS);
* a ChatML chat template identical to SmolLM2's.
"""

from __future__ import annotations

import pathlib

import gguf
import numpy as np

MODEL_NAME = "grm-tiny-test"

N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
N_CTX_TRAIN = 2048
HEAD_DIM = N_EMBD // N_HEAD

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# Common English letter pairs (written as plain text; " " becomes "Ġ").
# Digits are deliberately absent so that numbers stay one token per digit.
MERGE_PAIRS = (
    (" ", "t"), ("h", "e"), ("i", "n"), ("e", "r"), ("a", "n"),
    (" ", "a"), ("o", "n"), ("r", "e"), (" ", "s"), ("e", "n"),
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Printable Latin-1 bytes map to themselves; the remaining 68 bytes (control
    characters, space, ...) are shifted to code points 256, 257, ... in order.
    """
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in kept}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


def _vocab() -> tuple[list[str], list[int], list[str]]:
    """Return (tokens, token types, merges) for the byte-level BPE vocab."""
    b2u = _byte_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    types = [gguf.TokenType.NORMAL] * 256
    merges = []
    for left, right in MERGE_PAIRS:
        l_enc = "".join(b2u[b] for b in left.encode())
        r_enc = "".join(b2u[b] for b in right.encode())
        merges.append(f"{l_enc} {r_enc}")
        tokens.append(l_enc + r_enc)
        types.append(gguf.TokenType.NORMAL)
    for special in SPECIAL_TOKENS:
        tokens.append(special)
        types.append(gguf.TokenType.CONTROL)
    return tokens, [int(t) for t in types], merges


def write_tiny_gguf(
    path: str | pathlib.Path,
    seed: int = 0,
    *,
    n_layer: int = N_LAYER,
    n_embd: int = N_EMBD,
    n_head: int = N_HEAD,
    n_head_kv: int = N_HEAD_KV,
    n_ff: int = N_FF,
    f16: bool = False,
    chat_template: str | None = None,
) -> pathlib.Path:
    """Write the tiny test model to ``path`` and return it as a ``Path``.

    The same ``seed`` always gives a byte-identical file. Larger shapes (and f16 weights) give a
    random model of realistic size, for GPU offload checks where no real model can be carried.
    """
    head_dim = n_embd // n_head
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, token_types, merges = _vocab()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(MODEL_NAME)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    if chat_template != "":  # "": a GGUF that carries no chat template (as many converted judges)
        w.add_chat_template(chat_template or CHAT_TEMPLATE)

    def mat(rows: int, cols: int, scale: float) -> np.ndarray:
        # numpy shape (rows, cols) is ggml's [cols, rows]: cols is the input dim.
        return (rng.standard_normal((rows, cols), dtype=np.float32) * scale).astype(np.float16 if f16 else np.float32)

    ones = np.ones(n_embd, dtype=np.float32)
    kv_dim = n_head_kv * head_dim
    w.add_tensor("token_embd.weight", mat(n_vocab, n_embd, 1.0))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", mat(n_embd, n_embd, n_embd**-0.5))
        w.add_tensor(p + "attn_k.weight", mat(kv_dim, n_embd, n_embd**-0.5))
        w.add_tensor(p + "attn_v.weight", mat(kv_dim, n_embd, n_embd**-0.5))
        w.add_tensor(p + "attn_output.weight", mat(n_embd, n_embd, n_embd**-0.5))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", mat(n_ff, n_embd, n_embd**-0.5))
        w.add_tensor(p + "ffn_up.weight", mat(n_ff, n_embd, n_embd**-0.5))
        w.add_tensor(p + "ffn_down.weight", mat(n_embd, n_ff, n_ff**-0.5))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", mat(n_vocab, n_embd, n_embd**-0.5))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
