"""One way to turn completions into rewards, in-process or through a server: the path every RL hook uses.

Both judges group the completions of one prompt into one pointwise record (the GRM compares them), cut
over-long completions in the middle instead of refusing them, give an empty completion the template's
lowest score, and return None where no sample parsed. `RemoteJudge` posts to `grm serve`'s /rewards,
which runs exactly `LocalJudge`'s steps on the server's engine, so the two agree on the same model,
engine and settings.
"""

from __future__ import annotations

import threading
from typing import Sequence

from grm_cli.errors import InputError
from grm_cli.integrations.client import RewardClient
from grm_cli.serve.rewards import group_completions, rewards_from_results


class LocalJudge:
    """A loaded engine (or a model to load) and the scoring settings; safe to call from several threads
    (calls take turns: one llama.cpp context)."""

    def __init__(self, engine=None, *, model: str | None = None, template: str = "pointwise", protocol: str | None = None, k: int = 1,
                 temperature: float | None = None, max_tokens: int = 256, seed: int = 0, n_ctx: int = 4096, parallel: int = 16,
                 n_gpu_layers: int | str = "auto"):
        """`protocol`: the judge protocol (grm protocols; default: the model alias's, else deepseek-grm). An
        absolute protocol scores each completion alone; a pairwise one needs two completions per prompt."""
        from grm_cli.engine.factory import EngineOptions, build_engine
        from grm_cli.scoring.options import ScoreOptions

        opts = ScoreOptions(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, template=template, protocol=protocol)
        opts.check()
        self.template = opts.judge(model)
        options = EngineOptions(model=model, ctx=n_ctx, parallel=parallel, n_gpu_layers=str(n_gpu_layers), cache=False,
                                chat_template=getattr(self.template, "chat_template", None))
        self.engine = engine if engine is not None else build_engine(options)
        self.settings = opts.settings()
        self.chunk = options.chunk(k)
        self._lock = threading.Lock()

    @property
    def score_range(self) -> tuple[int, int]:
        return self.template.score_min, self.template.score_max

    def rewards(self, prompts: Sequence, completions: Sequence) -> list[float | None]:
        from grm_cli.scoring.job import ScoreJob

        records, slots = group_completions(prompts, completions, self.template)
        job = ScoreJob(self.template, self.settings, on_long="truncate", what="judging")
        with self._lock:
            results = job.run(job.check(records), self.engine, chunk=self.chunk).results
        return rewards_from_results(results, slots, len(completions), empty=float(self.template.score_min))


class RemoteJudge:
    """A running `grm serve` (its model, template, k and engine are the server's)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0):
        self.client = RewardClient(url, api_key=api_key, timeout=timeout)
        self.score_range: tuple[int, int] = (1, 10)  # until the server has said

    def rewards(self, prompts: Sequence, completions: Sequence) -> list[float | None]:
        if len(prompts) != len(completions):
            raise InputError(f"{len(prompts)} prompts for {len(completions)} completions", "completions")
        if not prompts:
            return []
        rewards, self.score_range = self.client.rewards(list(prompts), list(completions))
        return rewards


def make_judge(*, url: str | None = None, api_key: str | None = None, engine=None, **local) -> LocalJudge | RemoteJudge:
    """`url` for a running server, else an in-process judge over `engine` or `local["model"]`."""
    if url is not None:
        given = sorted(k for k, v in local.items() if v is not None)
        if engine is not None or given:
            raise InputError(f"url= scores on the server, with its own model and settings: drop {', '.join(['engine'] * (engine is not None) + given)}")
        return RemoteJudge(url, api_key=api_key)
    return LocalJudge(engine, **{k: v for k, v in local.items() if v is not None})
