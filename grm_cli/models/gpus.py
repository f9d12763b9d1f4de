"""The GPUs on this machine and what llama.cpp was built to use: detection (nvidia-smi, Apple silicon), the
reinstall hint for a CPU-only build next to a GPU, and `--n-gpu-layers auto` (how many layers fit)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from grm_cli.models.fit import MiB, fit_layers, read_shape

GPU_BACKENDS = ("CUDA", "Metal", "Vulkan", "HIP", "SYCL", "OpenCL")


@dataclass(frozen=True)
class Gpu:
    name: str
    total_bytes: int
    free_bytes: int | None  # None where it cannot be read (e.g. Metal's unified memory)
    vendor: str


def parse_system_info(info: str) -> tuple[list[str], list[str]]:
    """llama.cpp's system info line -> (backends compiled in, CPU features on).
    The line reads `CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX = 1 | ...`: a `NAME :`
    opens a backend's section, and only the CPU section's `X = 1` entries are CPU features."""
    backends, features = [], []
    section = "CPU"
    for part in info.split("|"):
        part = part.strip()
        if " : " in part:
            section, part = (x.strip() for x in part.split(" : ", 1))
            if section != "CPU" and section not in backends:
                backends.append(section)
        if section == "CPU" and part.endswith("= 1"):
            features.append(part[:-3].strip())
    return backends, features


def nvidia_gpus(run=subprocess.run) -> list[Gpu]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = run(
            ["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]) * MiB, int(parts[2]) * MiB, "nvidia"))
    return gpus


def apple_gpu() -> list[Gpu]:
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return []
    try:
        mem = int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        mem = 0
    return [Gpu("Apple Silicon GPU (unified memory)", mem, None, "apple")]


def detect_gpus() -> list[Gpu]:
    return nvidia_gpus() + apple_gpu()


def reinstall_hint(gpus: list[Gpu], backends: list[str]) -> str | None:
    """When a GPU is present but llama.cpp was built without its backend: the exact reinstall command."""
    vendors = {g.vendor for g in gpus}
    if "nvidia" in vendors and "CUDA" not in backends:
        flag = "-DGGML_CUDA=on"
    elif "apple" in vendors and "Metal" not in backends:
        flag = "-DGGML_METAL=on"
    else:
        return None
    return f'CMAKE_ARGS="{flag}" pip install --force-reinstall --no-cache-dir llama-cpp-python'


def auto_gpu_layers(model_path: Path, kv_cells: int, kv_type: str = "f16") -> tuple[int, str]:
    """`--n-gpu-layers auto`: all layers on Metal (unified memory), the largest fitting offload on CUDA,
    0 without a GPU backend. Returns (value for llama.cpp, a sentence saying why)."""
    from grm_cli.native import gpu_offload_supported, system_info

    if not gpu_offload_supported():
        gpus = detect_gpus()
        hint = reinstall_hint(gpus, parse_system_info(system_info())[0])
        why = "llama.cpp was built without a GPU backend: running on the CPU"
        return 0, why + (f" (a GPU is present: {hint})" if hint else "")
    free = next((g.free_bytes for g in detect_gpus() if g.free_bytes is not None), None)
    if free is None:
        return -1, "GPU memory cannot be read here (unified memory): offloading every layer"
    shape = read_shape(model_path)
    fit = fit_layers(shape, free, kv_cells, kv_type=kv_type)
    return fit.n_gpu_layers, fit.describe(shape)
