"""grm: generative reward modeling (DeepSeek SPCT / DeepSeek-GRM) on llama.cpp.

Python API (the CLI is a thin skin over it):

    from grm_cli import LlamaEngine, ScoreSettings, load_template, read_records, score_records
    engine = LlamaEngine(default_model_path())
    for result in score_records(read_records("pairs.jsonl"), engine, load_template(), ScoreSettings(k=4)):
        print(result.verdict.totals, result.verdict.best)
"""

__version__ = "0.1.0"

from grm_cli.core.judgment import Judgment, parse_judgment  # noqa: E402
from grm_cli.core.prompt import Template, load_template, render  # noqa: E402
from grm_cli.core.records import Record, record_from_dict
from grm_cli.core.rules import is_correct, rl_reward  # noqa: E402
from grm_cli.core.score_line import ScoreLine, parse_scores  # noqa: E402
from grm_cli.core.voting import Verdict, vote  # noqa: E402
from grm_cli.errors import ExitCode, GrmError, InputError, ModelError  # noqa: E402
from grm_cli.io.jsonl import read_prompts, read_records
from grm_cli.models.registry import default_model_path, resolve_model  # noqa: E402
from grm_cli.scoring.pipeline import ScoreResult, ScoreSettings, generate_principles, score_record, score_records  # noqa: E402

__all__ = [
    "ExitCode", "GrmError", "InputError", "ModelError", "default_model_path", "resolve_model", "Judgment",
    "parse_judgment", "parse_scores", "ScoreLine", "ScoreResult", "ScoreSettings", "generate_principles", "score_record",
    "score_records", "Template", "load_template", "render", "Record", "read_prompts", "read_records",
    "record_from_dict", "is_correct", "rl_reward", "Verdict", "vote", "LlamaEngine",
]


def __getattr__(name: str):
    # The engine imports llama_cpp (a native library): load it only when asked for.
    if name == "LlamaEngine":
        from grm_cli.engine.llama import LlamaEngine

        return LlamaEngine
    raise AttributeError(name)
