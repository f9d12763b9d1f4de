"""One GGUF's weights and vocabulary in llama.cpp (llama-cpp-python's `_internals.LlamaModel`, through `Llama`)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp as lib

from grm_cli.errors import ModelError
from grm_cli.native.log import captured_stderr, quiet_bindings_log

# what llama.cpp said while failing to load, and what it says while loading well
_LOAD_NOISE = ("llama_model_loader", "print_info", "load", "create_tensor")
_FAILURE_WORDS = ("error", "fail", "does not", "out of memory", "unable", "invalid", "unknown")


class NativeModel:
    """The weights (loaded once, shared by every context made on them), the vocabulary, and the LoRA adapter
    loaded with them. Loaded through the high-level `Llama`, whose own context (`n_ctx`) is the one
    `LlamaEngine` generates in; other contexts (`Context`) are made on the same weights."""

    def __init__(self, path: Path, *, n_ctx: int, n_gpu_layers: int, n_threads: int | None, kv_type: str, flash_attn: bool,
                 use_mmap: bool, use_mlock: bool, verbose: bool, lora: Path | None, lora_scale: float):
        from llama_cpp import Llama

        kv_ggml = getattr(lib, f"GGML_TYPE_{kv_type.upper()}")
        failure: Exception | None = None
        with captured_stderr(not verbose) as log:
            try:
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=n_threads,
                    type_k=kv_ggml,
                    type_v=kv_ggml,
                    flash_attn=flash_attn,
                    use_mmap=use_mmap,
                    use_mlock=use_mlock,
                    lora_path=str(lora) if lora is not None else None,
                    lora_scale=lora_scale,
                    # Loading verbosely into the captured stderr keeps llama.cpp's reason for a failure.
                    verbose=True,
                )
            except Exception as e:  # llama.cpp raises a bare ValueError; its log holds the reason
                failure = e
        if not verbose:
            quiet_bindings_log()
            if failure is None:
                self.llm.verbose = False
        if failure is not None:
            reasons = [ln.strip() for ln in "".join(log).splitlines() if ln.strip() and not ln.startswith(_LOAD_NOISE)]
            tail = [ln for ln in reasons if any(w in ln.lower() for w in _FAILURE_WORDS)][-3:] or reasons[-2:]
            detail = ("; llama.cpp said: " + " | ".join(tail)) if tail else ""
            what = f"{path} with the adapter {lora}" if lora is not None else str(path)
            raise ModelError(f"{what}: llama.cpp could not load this model ({failure}){detail}")
        self.path, self.lora, self.lora_scale, self.n_gpu_layers = path, lora, lora_scale, n_gpu_layers
        self.ptr = self.llm.model  # the llama_model*
        self.vocab = lib.llama_model_get_vocab(self.ptr)
        self.metadata: dict = self.llm.metadata
        self.n_ctx = self.llm.n_ctx()
        self.n_ctx_train = int(lib.llama_model_n_ctx_train(self.ptr))
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_embd = int(lib.llama_model_n_embd(self.ptr))

    # -- the vocabulary --------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of `text`, no BOS added (a chat template writes its own); `special`: special tokens
        written in the text are read as such."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens, *, special: bool) -> bytes:
        return self.llm.detokenize(list(tokens), special=special)

    def token_text(self, tok: int) -> str:
        """A special token as text ("" for none: a negative id)."""
        if tok < 0:
            return ""
        return self.detokenize([tok], special=True).decode("utf-8", "replace")

    @property
    def bos_text(self) -> str:
        return self.token_text(self.llm.token_bos())

    @property
    def eos_text(self) -> str:
        return self.token_text(self.llm.token_eos())

    def piece(self, tok: int) -> bytes:
        """The bytes a generated token adds to the text (part of a UTF-8 character, possibly)."""
        buf = ctypes.create_string_buffer(256)
        n = lib.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lib.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
        return buf.raw[:n]

    def is_eog(self, tok: int) -> bool:
        """An end-of-generation token."""
        return bool(lib.llama_vocab_is_eog(self.vocab, tok))

    # -- the adapter -----------------------------------------------------------------------------
    def attach_adapter(self, ctx_ptr) -> None:
        """Apply the LoRA loaded with the weights to another context on them (llama.cpp applies adapters
        per context). The bindings hold the adapter only as a private attribute: read here, and only here."""
        adapter = getattr(self.llm, "_lora_adapter", None)
        if adapter is None:
            return
        adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(self.lora_scale)
        if lib.llama_set_adapters_lora(ctx_ptr, adapters, 1, scales) != 0:
            raise ModelError(f"{self.lora}: llama.cpp could not apply this adapter to a new context")


def llama_grammar(gbnf: str):
    """A GBNF grammar for `Llama.create_completion`."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)
