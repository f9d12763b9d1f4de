"""The GPU fitting rule on real model shapes, and `grm doctor` on this machine's real llama.cpp."""

from __future__ import annotations

import json

import pytest
from conftest import grm

from grm_cli.doctor import SCORE_LINE_TOKENS, model_needs, work_cells
from grm_cli.models.fit import SAFETY_BYTES, GiB, MiB, ModelShape, compute_buffer_bytes, fit_layers, kv_bytes_per_layer, read_shape
from grm_cli.models.gpus import Gpu, nvidia_gpus, parse_system_info, reinstall_hint


def shape(n_layer, layer_mib, *, kv_width, n_vocab=32000, output_mib=200, host_mib=250, name="m"):
    return ModelShape(name, "llama", n_layer, (layer_mib * MiB,) * n_layer, output_mib * MiB, host_mib * MiB, 4096, n_vocab, kv_width, 8192)


# Shapes from GGUF metadata of real models (per-layer Q4_K_M sizes rounded): a 7B llama (32 layers,
# 8 KV heads x 128), a 16B-class model (28 layers), a 27B gemma-2 (46 layers, 16 KV heads x 128).
LLAMA_7B = shape(32, 120, kv_width=8 * 128 * 2, output_mib=205)
MID_16B = shape(28, 330, kv_width=16 * 128 * 2, n_vocab=102400, output_mib=420)
GEMMA_27B = shape(46, 340, kv_width=16 * 128 * 2, n_vocab=256000, output_mib=1000)


def test_everything_fits_on_a_big_card():
    fit = fit_layers(LLAMA_7B, 80 * GiB, 4096)
    assert fit.all_fit and fit.n_gpu_layers == 33
    kv = kv_bytes_per_layer(LLAMA_7B, 4096)
    assert kv == 4096 * 2048 * 2  # n_ctx x (K + V width) x 2 bytes (f16)
    assert fit.gpu_bytes == 32 * 120 * MiB + 32 * kv + 205 * MiB


def test_nothing_fits_in_less_than_the_safety_margin():
    fit = fit_layers(GEMMA_27B, SAFETY_BYTES // 2, 4096)
    assert fit.n_gpu_layers == 0 and not fit.all_fit and fit.gpu_bytes == 0
    assert "CPU" in fit.describe(GEMMA_27B)


def test_partial_offload_on_a_laptop_gpu_is_the_largest_count_that_fits():
    free = 8 * GiB
    fit = fit_layers(GEMMA_27B, free, 4096)
    budget = int(free * 0.95) - SAFETY_BYTES - compute_buffer_bytes(GEMMA_27B, 4096)
    per_layer = 340 * MiB + kv_bytes_per_layer(GEMMA_27B, 4096)
    assert fit.n_gpu_layers == budget // per_layer and 0 < fit.n_gpu_layers < 46
    assert fit.gpu_bytes == fit.n_gpu_layers * per_layer <= fit.budget_bytes
    assert "of 46 layers" in fit.describe(GEMMA_27B)


def test_longer_context_and_quantized_kv_change_the_fit():
    base = fit_layers(MID_16B, 12 * GiB, 4096).n_gpu_layers
    assert fit_layers(MID_16B, 12 * GiB, 32768).n_gpu_layers < base
    assert fit_layers(MID_16B, 12 * GiB, 32768, kv_type="q4_0").n_gpu_layers > fit_layers(MID_16B, 12 * GiB, 32768).n_gpu_layers
    assert fit_layers(MID_16B, 12 * GiB, 4096, n_seq=8).n_gpu_layers < base


@pytest.mark.slow
def test_read_shape_of_the_real_default_model(smollm2_path):
    s = read_shape(smollm2_path)
    assert s.architecture == "llama" and s.n_layer == 30 and s.ctx_train == 8192 and s.n_vocab == 49152
    assert s.kv_width == 3 * 64 * 2  # 3 KV heads x head size 64, K and V
    assert len(set(s.layer_bytes)) == 1 and s.layer_bytes[0] > 1_000_000
    assert abs(s.weight_bytes - smollm2_path.stat().st_size) < 0.1 * smollm2_path.stat().st_size + s.output_bytes


def test_system_info_parsing():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | OPENMP = 1 | CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | "
    backends, features = parse_system_info(info)
    assert backends == ["CUDA"] and "AVX" in features and "AVX512" not in features
    # as seen on an H200 build: the CUDA section comes first; its flags are not CPU features
    backends, features = parse_system_info("CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | AVX2 = 1 | ")
    assert backends == ["CUDA"] and features == ["SSE3", "AVX2"]


def test_reinstall_hint_only_when_a_gpu_lacks_its_backend():
    nvidia = [Gpu("RTX 4070 Laptop", 8 * GiB, 7 * GiB, "nvidia")]
    apple = [Gpu("Apple", 16 * GiB, None, "apple")]
    assert reinstall_hint(nvidia, []) == 'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
    assert reinstall_hint(nvidia, ["CUDA"]) is None
    assert "-DGGML_METAL=on" in reinstall_hint(apple, [])
    assert reinstall_hint([], []) is None


def test_nvidia_smi_output_is_read(monkeypatch):
    class Done:
        stdout = "NVIDIA H100 80GB HBM3, 81559, 80000\nbroken line\n"

    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/nvidia-smi")
    gpus = nvidia_gpus(run=lambda *a, **k: Done())
    assert gpus == [Gpu("NVIDIA H100 80GB HBM3", 81559 * MiB, 80000 * MiB, "nvidia")]


@pytest.mark.slow
def test_doctor_on_this_machine(smollm2_path):
    p = grm("doctor", "--json", "--ctx", "8192")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    import llama_cpp

    assert r["llama_cpp_python"] == llama_cpp.__version__
    assert r["gpu_offload"] == bool(llama_cpp.llama_supports_gpu_offload())
    assert r["default_model"] == str(smollm2_path)
    m = r["model"]
    assert m["n_layer"] == 30 and m["ctx"] == 8192
    assert m["kv_cells"] == work_cells(8192, m["parallel"], 1, 512)  # sized to the work, not a multiple of --ctx
    assert m["kv_cache_gib"] == pytest.approx(30 * m["kv_cells"] * 384 * 2 / GiB)
    p = grm("doctor")
    assert p.returncode == 0 and "llama-cpp-python" in p.stdout and "KV cache" in p.stdout


@pytest.mark.slow
def test_engine_knobs_and_llama_cpp_reasons(tiny_model, smollm2_path):
    from grm_cli.engine.llama import LlamaEngine
    from grm_cli.errors import ModelError

    engine = LlamaEngine(smollm2_path, n_ctx=1024, kv_type="q8_0", flash_attn=True, use_mmap=False)
    assert engine.count_tokens([{"role": "user", "content": "hi"}]) > 0
    with pytest.raises(ModelError) as e:  # the tiny model's 16-wide heads cannot hold a q8_0 cache
        LlamaEngine(tiny_model, n_ctx=1024, kv_type="q8_0", flash_attn=True)
    assert "does not divide" in str(e.value)
    with pytest.raises(ValueError):
        LlamaEngine(tiny_model, kv_type="q4_0")
    p = grm("score", "-", "--model", tiny_model, "--kv-type", "q4_0", stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert p.returncode == 2 and "--flash-attn" in p.stderr
    p = grm("score", "-", "--model", tiny_model, "--n-gpu-layers", "lots", stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert p.returncode == 2 and "--n-gpu-layers" in p.stderr


def test_doctor_and_auto_offload_count_the_work_s_cells(tiny_model):
    """`grm doctor` and `--n-gpu-layers auto` count one number: k x (prompt + max tokens + score line) per
    record, a record's samples sharing its prompts, across the records filling --parallel; the offload
    doctor reports is the fitting rule applied to exactly those cells."""
    from grm_cli.engine.kvplan import planned_cells, round_cells

    new = 256 + SCORE_LINE_TOKENS
    # k = 8 on 16 sequences: 2 records, 2 response orders each, prompts up to ctx - new; 16 samples' budgets
    assert work_cells(4096, 16, 8, 256) == round_cells(4 * (4096 - new) + 16 * new) == planned_cells(4096, 16, samples=8, new_tokens=new)
    assert work_cells(4096, 16, 1, 512) == 16 * 4096  # k = 1: every sequence its own prompt
    assert work_cells(2048, 16, 8, 256) < work_cells(4096, 16, 8, 256) < work_cells(4096, 32, 8, 256)
    gpus = [Gpu("test card", 8 * GiB, 6 * GiB, "nvidia")]
    m = model_needs(tiny_model, gpus, True, 4096, "f16", parallel=16, samples=8, max_tokens=256)
    shape_ = read_shape(tiny_model)
    assert m.kv_cells == work_cells(4096, 16, 8, 256)
    assert m.kv_cache_gib == pytest.approx(kv_bytes_per_layer(shape_, m.kv_cells) * shape_.n_layer / GiB)
    assert m.n_gpu_layers_auto == fit_layers(shape_, 6 * GiB, m.kv_cells).n_gpu_layers


def test_doctor_takes_the_run_s_adaptive_rule(tiny_model):
    plain = json.loads(grm("doctor", "--model", tiny_model, "-k", "16", "--parallel", "16", "--json").stdout)["model"]
    adaptive = json.loads(grm("doctor", "--model", tiny_model, "-k", "16", "--parallel", "16", "--adaptive", "exact", "--json").stdout)["model"]
    assert adaptive["adaptive"] and not plain["adaptive"]
    assert adaptive["kv_cells"] == work_cells(4096, 16, 16, 512, adaptive=True) > plain["kv_cells"]
    p = grm("doctor", "--model", tiny_model, "--adaptive", "sometimes")
    assert p.returncode == 2 and "--adaptive 'sometimes': expected exact or stat" in p.stderr
