"""Smoke tests: the tiny generated GGUF model works with llama.cpp."""

import re
import time

import llama_cpp  # noqa: E402  (a hard dependency: a missing engine must fail, not skip)
import pytest
from tiny_gguf import write_tiny_gguf  # noqa: E402

PAIR_GRAMMAR = 'root ::= num ", " num "}"\nnum ::= "10" | [1-9]'
PAIR_RE = re.compile(r"^(10|[1-9]), (10|[1-9])\}$")


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    path = write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")
    assert path.stat().st_size < 5 * 1024 * 1024
    start = time.perf_counter()
    model = llama_cpp.Llama(model_path=str(path), n_ctx=1024, verbose=False)
    assert time.perf_counter() - start < 5.0
    return model


def test_deterministic_file_and_metadata(tmp_path, llm):
    a = write_tiny_gguf(tmp_path / "a.gguf", seed=3)
    b = write_tiny_gguf(tmp_path / "b.gguf", seed=3)
    c = write_tiny_gguf(tmp_path / "c.gguf", seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert llm.metadata["general.name"] == "grm-tiny-test"
    assert llm.metadata["general.architecture"] == "llama"
    assert "<|im_start|>" in llm.metadata["tokenizer.chat_template"]


def test_tokenizer_round_trip(llm):
    for text in [b"hello", b"The 10 cats, 7} \\ {\"a\": 1}\n\tx ~!@#$%^&*()_+-=[]|;:'<>?/"]:
        toks = llm.tokenize(text, add_bos=False)
        assert toks
        assert llm.detokenize(toks) == text
    # digits are single-byte tokens
    assert len(llm.tokenize(b"10", add_bos=False)) == 2
    # ChatML control tokens are recognised as single special tokens
    im_end = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    assert im_end == [llm.token_eos()]


def test_generation_and_grammar(llm):
    prompt = "<|im_start|>user\nRate it.<|im_end|>\n<|im_start|>assistant\n"
    free = llm.create_completion(prompt, max_tokens=8, temperature=0.8, seed=1)
    assert isinstance(free["choices"][0]["text"], str)

    grammar = llama_cpp.LlamaGrammar.from_string(PAIR_GRAMMAR, verbose=False)
    outputs = set()
    for seed in range(6):
        out = llm.create_completion(
            prompt, max_tokens=16, temperature=0.5, seed=seed, grammar=grammar
        )["choices"][0]["text"]
        assert PAIR_RE.match(out), out
        again = llm.create_completion(
            prompt, max_tokens=16, temperature=0.5, seed=seed, grammar=grammar
        )["choices"][0]["text"]
        assert again == out
        outputs.add(out)
    greedy = llm.create_completion(prompt, max_tokens=16, temperature=0.0, grammar=grammar)
    assert PAIR_RE.match(greedy["choices"][0]["text"])
