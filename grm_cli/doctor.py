"""What this install can do: llama.cpp's backends, the GPUs and their free memory, the default model,
the training extra, and whether a given model fits. Facts are gathered here; `render`/CLI show them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grm_cli.core.adaptive import Policy
from grm_cli.engine.base import TAIL_SLACK
from grm_cli.engine.kvplan import CPU_PARALLEL, GPU_PARALLEL, planned_adaptive_cells, planned_cells
from grm_cli.models.fit import GiB, ModelShape, fit_layers, kv_bytes_per_layer, read_shape
from grm_cli.models.gpus import Gpu, detect_gpus, parse_system_info, reinstall_hint


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
    adaptive: bool = False  # adaptive voting's rounds: records in flight keep their prompts between rounds


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


def work_cells(ctx: int, parallel: int, samples: int = 1, max_tokens: int = 512, *, adaptive: bool = False) -> int:
    """The KV cells `grm score --ctx C --parallel P -k K --max-tokens M [--adaptive RULE]` allocates at most:
    each record's prompts (as long as --ctx allows) once, each sample's budget, across the records in flight
    (with --adaptive: a round's worth of sequences each, holding their prompts between rounds). The same
    count `--n-gpu-layers auto` fits (the engine then asks with the cells of the actual prompts, never more)."""
    new_tokens = max_tokens + SCORE_LINE_TOKENS
    if adaptive and samples > 1:
        return planned_adaptive_cells(ctx, parallel, k=samples, round_size=Policy("exact").round_size, new_tokens=new_tokens)
    return planned_cells(ctx, parallel, samples=samples, new_tokens=new_tokens)


def model_needs(path: Path, gpus: list[Gpu], gpu_offload: bool, ctx: int, kv_type: str, n_seq: int = 1, *, parallel: int = 16, samples: int = 1,
                max_tokens: int = 512, adaptive: bool = False) -> ModelNeeds:
    """What `grm score` with the default (batched) engine allocates for this work: `work_cells` KV cells
    shared by the parallel sequences (`n_seq` multiplies them, for callers that hold several caches)."""
    shape: ModelShape = read_shape(path)
    cells = work_cells(ctx, parallel, samples, max_tokens, adaptive=adaptive)
    kv = kv_bytes_per_layer(shape, cells, n_seq, kv_type) * shape.n_layer
    free = next((g.free_bytes for g in gpus if g.free_bytes is not None), None)
    fit = fit_layers(shape, free, cells, n_seq=n_seq, kv_type=kv_type) if gpu_offload and free is not None else None
    return ModelNeeds(
        path=str(path), name=shape.name, architecture=shape.architecture, n_layer=shape.n_layer,
        weights_gib=shape.weight_bytes / GiB, kv_cache_gib=kv / GiB, ctx=ctx, ctx_train=shape.ctx_train, kv_type=kv_type,
        fit=fit.describe(shape) if fit else None, n_gpu_layers_auto=fit.n_gpu_layers if fit else None,
        kv_cells=cells, parallel=parallel, samples=samples, max_tokens=max_tokens, adaptive=adaptive and samples > 1,
    )


def diagnose(model: str | None = None, ctx: int = 4096, kv_type: str = "f16", *, parallel: int | None = None, samples: int = 1,
             max_tokens: int = 512, adaptive: bool = False) -> DoctorReport:
    """parallel: --parallel as `grm score` would get it (None: its default for this install)."""
    from grm_cli import __version__
    from grm_cli.errors import ModelError
    from grm_cli.models.registry import default_model_path, resolve_model

    problems: list[str] = []
    try:
        from grm_cli.native import gpu_offload_supported, lib, system_info

        backends, features = parse_system_info(system_info())
        offload = gpu_offload_supported()
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
        report.model = model_needs(path, gpus, offload, ctx, kv_type, parallel=n_par, samples=samples, max_tokens=max_tokens, adaptive=adaptive)
        if report.model.ctx_train and ctx > report.model.ctx_train:
            problems.append(f"--ctx {ctx} is above the {report.model.ctx_train} tokens the model was trained for")
    return report
