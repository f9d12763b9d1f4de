"""Hooks for RL frameworks: a TRL reward function that scores GRPO completions with the GRM.

    from trl import GRPOTrainer
    from grm_cli.serve.trl import trl_reward
    trainer = GRPOTrainer(model=..., reward_funcs=[trl_reward(model="DeepSeek-GRM-16B.Q4_K_M.gguf", k=4)], ...)

For OpenRLHF, run `grm serve` and pass `--remote_rm_url http://127.0.0.1:8000/get_reward`.
"""

from __future__ import annotations

from typing import Callable, Sequence

from grm_cli.core.prompt import load_template
from grm_cli.engine.factory import EngineOptions, build_engine
from grm_cli.scoring.pipeline import ScoreSettings, prepare_records, score_records
from grm_cli.serve.rewards import group_completions, rewards_from_results


def trl_reward(
    engine=None,
    *,
    model: str | None = None,
    template: str = "pointwise",
    k: int = 1,
    temperature: float | None = None,
    max_tokens: int = 256,
    seed: int = 0,
    n_ctx: int = 4096,
    parallel: int = 16,
    n_gpu_layers: int | str = "auto",
) -> Callable[..., list[float | None]]:
    """A reward function with TRL's signature, `f(prompts, completions, **kwargs) -> list[float | None]`.

    The completions of one prompt are judged together in one pointwise record (k samples voted, responses
    shuffled per sample); a completion's reward is its mean score, None when no sample parsed (TRL skips
    None rewards), the template's lowest score for an empty completion. Completions too long for the
    context are cut in the middle (marked), not refused: a training step must not stop on one rollout. Give a loaded `engine`, or a `model` (path, alias, hf://; default: the small model)."""
    options = EngineOptions(model=model, ctx=n_ctx, parallel=parallel, n_gpu_layers=str(n_gpu_layers), cache=False)
    if engine is None:
        engine = build_engine(options)
    tmpl = load_template(template)
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens)
    chunk = options.chunk(k)

    def grm_reward(prompts: Sequence, completions: Sequence, **kwargs) -> list[float | None]:
        records, slots = group_completions(prompts, completions, tmpl)
        results = list(score_records(prepare_records(records, engine, tmpl, settings, on_long="truncate"), engine, tmpl, settings, chunk=chunk))
        return rewards_from_results(results, slots, len(completions), empty=float(tmpl.score_min))

    grm_reward.engine = engine  # type: ignore[attr-defined]
    return grm_reward
