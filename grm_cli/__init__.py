"""grm: generative reward modeling (DeepSeek SPCT / DeepSeek-GRM) on llama.cpp.

Python API (the CLI is a thin skin over it):

    from grm_cli import LlamaEngine, ScoreSettings, load_template, read_records, score_records
    engine = LlamaEngine(default_model_path())
    for result in score_records(read_records("pairs.jsonl"), engine, load_template(), ScoreSettings(k=4)):
        print(result.verdict.totals, result.verdict.best)
"""

__version__ = "0.1.0"

# Where each public name lives. Imported on first use (PEP 562), so that `import grm_cli.errors` or
# `grm --help` does not pay for the scoring pipeline, and the engine's native library loads only when asked for.
_EXPORTS = {
    "Judgment": "grm_cli.core.judgment", "parse_judgment": "grm_cli.core.judgment",
    "Template": "grm_cli.core.prompt", "load_template": "grm_cli.core.prompt", "render": "grm_cli.core.prompt",
    "Record": "grm_cli.core.records", "record_from_dict": "grm_cli.core.records",
    "is_correct": "grm_cli.core.rules", "rl_reward": "grm_cli.core.rules",
    "ScoreLine": "grm_cli.core.score_line", "parse_scores": "grm_cli.core.score_line",
    "Verdict": "grm_cli.core.voting", "vote": "grm_cli.core.voting",
    "ExitCode": "grm_cli.errors", "GrmError": "grm_cli.errors", "InputError": "grm_cli.errors", "ModelError": "grm_cli.errors",
    "read_prompts": "grm_cli.io.jsonl", "read_records": "grm_cli.io.jsonl",
    "default_model_path": "grm_cli.models.registry", "resolve_model": "grm_cli.models.registry",
    "ScoreResult": "grm_cli.scoring.results", "ScoreSettings": "grm_cli.scoring.settings",
    "generate_principles": "grm_cli.scoring.principles", "score_record": "grm_cli.scoring.pipeline",
    "score_records": "grm_cli.scoring.pipeline",
    "LlamaEngine": "grm_cli.engine.llama",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grm_cli' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])
