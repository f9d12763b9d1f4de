"""What this install can do: llama.cpp's backends, the GPUs and their free memory, the default model,
the training extra, and whether a given model fits. Facts are gathered here; `render`/CLI show them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grm_cli.engine.base import TAIL_SLACK
from grm_cli.engine.kvplan import CPU_PARALLEL, GPU_PARALLEL, planned_cells
from grm_cli.models.fit import GiB, MiB, ModelShape, fit_layers, kv_bytes_per_layer, read_shape

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


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class ModelNeeds:
    path: str
    name: str
    architecture: str
    n_layer: int
    weights_gib: float
    kv_cache_gib: float
    ctx: int
    ctx_train: int
    kv_type: str
    fit: str | None
    n_gpu_layers_auto: int | None
    kv_cells: int = 0  # what the batched engine allocates at most for this work (engine.kvplan)
    parallel: int = 16
    samples: int = 1
    max_tokens: int = 512


@dataclass
class DoctorReport:
    grm_version: str
    python: str
    llama_cpp_python: str | None
    backends: list[str]
    cpu_features: list[str]
    gpu_offload: bool
    gpus: list[Gpu]
    reinstall_hint: str | None
    default_model: str | None
    default_model_hint: str | None
    training: dict
    model: ModelNeeds | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


SCORE_LINE_TOKENS = 64 + TAIL_SLACK  # a forced score line's budget (ForcedTail.max_tokens) and its slack


def work_cells(ctx: int, parallel: int, samples: int = 1, max_tokens: int = 512) -> int:
    """The KV cells `grm score --ctx C --parallel P -k K --max-tokens M` allocates at most: each record's
    prompts (as long as --ctx allows) once, each sample's budget, across the records in flight. The same
    count `--n-gpu-layers auto` fits (the engine then asks with the cells of the actual prompts, never more)."""
    return planned_cells(ctx, parallel, samples=samples, new_tokens=max_tokens + SCORE_LINE_TOKENS)


def model_needs(path: Path, gpus: list[Gpu], gpu_offload: bool, ctx: int, kv_type: str, n_seq: int = 1, *, parallel: int = 16, samples: int = 1,
                max_tokens: int = 512) -> ModelNeeds:
    """What `grm score` with the default (batched) engine allocates for this work: `work_cells` KV cells
    shared by the parallel sequences (`n_seq` multiplies them, for callers that hold several caches)."""
    shape: ModelShape = read_shape(path)
    cells = work_cells(ctx, parallel, samples, max_tokens)
    kv = kv_bytes_per_layer(shape, cells, n_seq, kv_type) * shape.n_layer
    free = next((g.free_bytes for g in gpus if g.free_bytes is not None), None)
    fit = fit_layers(shape, free, cells, n_seq=n_seq, kv_type=kv_type) if gpu_offload and free is not None else None
    return ModelNeeds(
        path=str(path), name=shape.name, architecture=shape.architecture, n_layer=shape.n_layer,
        weights_gib=shape.weight_bytes / GiB, kv_cache_gib=kv / GiB, ctx=ctx, ctx_train=shape.ctx_train, kv_type=kv_type,
        fit=fit.describe(shape) if fit else None, n_gpu_layers_auto=fit.n_gpu_layers if fit else None,
        kv_cells=cells, parallel=parallel, samples=samples, max_tokens=max_tokens,
    )


def diagnose(model: str | None = None, ctx: int = 4096, kv_type: str = "f16", *, parallel: int | None = None, samples: int = 1,
             max_tokens: int = 512) -> DoctorReport:
    """parallel: --parallel as `grm score` would get it (None: its default for this install)."""
    from grm_cli import __version__
    from grm_cli.errors import ModelError
    from grm_cli.models.registry import default_model_path, resolve_model

    problems: list[str] = []
    try:
        from grm_cli.engine._native import lib

        info = lib.llama_print_system_info().decode("utf-8", "replace")
        backends, features = parse_system_info(info)
        offload = bool(lib.llama_supports_gpu_offload())
        llama_version = getattr(lib, "__version__", None)
    except Exception as e:  # a broken native build must be reported, not crash the doctor
        backends, features, offload, llama_version = [], [], False, None
        problems.append(f"llama-cpp-python cannot be imported: {e}")
    gpus = detect_gpus()
    hint = reinstall_hint(gpus, backends)
    if hint:
        problems.append(f"a GPU is present but llama.cpp was built without its backend: {hint}")
    try:
        default, default_hint = str(default_model_path()), None
    except ModelError as e:
        default, default_hint = None, str(e)
        problems.append(str(e))
    torch_version = _version("torch")
    training = {
        "torch": torch_version,
        "torch_cuda_build": bool(torch_version and "+cu" in torch_version),
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "trl": _version("trl"),
    }
    report = DoctorReport(
        grm_version=__version__, python=platform.python_version(), llama_cpp_python=llama_version, backends=backends,
        cpu_features=features, gpu_offload=offload, gpus=gpus, reinstall_hint=hint, default_model=default,
        default_model_hint=default_hint, training=training, problems=problems,
    )
    if model is not None or default is not None:
        path = resolve_model(model) if model is not None else Path(default)
        n_par = parallel or (GPU_PARALLEL if offload else CPU_PARALLEL)
        report.model = model_needs(path, gpus, offload, ctx, kv_type, parallel=n_par, samples=samples, max_tokens=max_tokens)
        if report.model.ctx_train and ctx > report.model.ctx_train:
            problems.append(f"--ctx {ctx} is above the {report.model.ctx_train} tokens the model was trained for")
    return report


def auto_gpu_layers(model_path: Path, kv_cells: int, kv_type: str = "f16") -> tuple[int, str]:
    """`--n-gpu-layers auto`: all layers on Metal (unified memory), the largest fitting offload on CUDA,
    0 without a GPU backend. Returns (value for llama.cpp, a sentence saying why)."""
    from grm_cli.engine._native import lib

    if not lib.llama_supports_gpu_offload():
        gpus = detect_gpus()
        hint = reinstall_hint(gpus, parse_system_info(lib.llama_print_system_info().decode("utf-8", "replace"))[0])
        why = "llama.cpp was built without a GPU backend: running on the CPU"
        return 0, why + (f" (a GPU is present: {hint})" if hint else "")
    free = next((g.free_bytes for g in detect_gpus() if g.free_bytes is not None), None)
    if free is None:
        return -1, "GPU memory cannot be read here (unified memory): offloading every layer"
    shape = read_shape(model_path)
    fit = fit_layers(shape, free, kv_cells, kv_type=kv_type)
    return fit.n_gpu_layers, fit.describe(shape)
