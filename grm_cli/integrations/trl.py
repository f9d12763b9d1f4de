"""TRL's reward function: `f(prompts, completions, **kwargs) -> list[float | None]`, for GRPOTrainer.

    from trl import GRPOTrainer
    from grm_cli.integrations.trl import trl_reward
    reward = trl_reward(model="DeepSeek-GRM-16B.Q4_K_M.gguf", k=4)          # in this process
    reward = trl_reward(url="http://127.0.0.1:8000")                         # or a running `grm serve`
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

The completions of one prompt are judged together in one pointwise record (k samples voted, responses
shuffled per sample); a completion's reward is its mean score, None when no sample parsed (TRL skips
None rewards), the template's lowest score for an empty completion. Completions too long for the context
are cut in the middle (marked), not refused: a training step must not stop on one rollout.
"""

from __future__ import annotations

from typing import Callable, Sequence

from grm_cli.integrations.judge import make_judge


def trl_reward(
    engine=None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    template: str | None = None,
    protocol: str | None = None,
    k: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    n_ctx: int | None = None,
    parallel: int | None = None,
    n_gpu_layers: int | str | None = None,
) -> Callable[..., list[float | None]]:
    """A reward function over a running server (`url`, `api_key` or GRM_API_KEY), a loaded `engine`, or a
    `model` to load (path, alias, hf://; default: the small model). The settings (template, protocol, k, ...)
    apply in-process; a server uses its own. Defaults: pointwise, k = 1, 256 tokens, seed 0, 4096 context."""
    judge = make_judge(url=url, api_key=api_key, engine=engine, model=model, template=template, protocol=protocol, k=k, temperature=temperature, max_tokens=max_tokens,
                       seed=seed, n_ctx=n_ctx, parallel=parallel, n_gpu_layers=n_gpu_layers)

    def grm_reward(prompts: Sequence, completions: Sequence, **kwargs) -> list[float | None]:
        return judge.rewards(prompts, completions)

    grm_reward.judge = judge  # type: ignore[attr-defined]
    return grm_reward
