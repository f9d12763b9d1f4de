"""verl's custom reward function, scoring with the GRM in this process or through a running `grm serve`.

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)` once per response (its
naive reward manager) and passes `custom_reward_function.reward_kwargs` as keyword arguments; its batch
manager calls `compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos)` instead,
which judges the responses to one question together, as the paper's RL data is judged:

    custom_reward_function:
      path: /path/to/site-packages/grm_cli/integrations/verl.py
      name: compute_score                 # or compute_score_batch with reward_model.reward_manager=batch
      reward_kwargs: {url: "http://127.0.0.1:8000"}          # or {model: grm.gguf, k: 4}

verl hands a reward function only the response, so the question must ride in `extra_info` (key
"question", "prompt" or "query": a string or chat messages), as verl's own data preprocessors put it.
`ground_truth` is not shown to the judge unless `show_ground_truth=True` (then appended to the question
as a reference answer). A response no sample could score gets `unparsed_reward` (default: the
template's lowest score): verl needs a number. Judges are kept per settings, so a model loads once.
"""

from __future__ import annotations

import threading
from typing import Sequence

from grm_cli.errors import InputError
from grm_cli.integrations.judge import make_judge

_JUDGES: dict[tuple, object] = {}
_LOCK = threading.Lock()
_QUESTION_KEYS = ("question", "prompt", "query")


def compute_score(data_source, solution_str: str, ground_truth=None, extra_info: dict | None = None, *, url: str | None = None, api_key: str | None = None,
                  unparsed_reward: float | None = None, show_ground_truth: bool = False, **settings) -> float:
    """The GRM's reward for one response (the mean of its parsed samples' scores, 1..10 by default)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], url=url, api_key=api_key,
                               unparsed_reward=unparsed_reward, show_ground_truth=show_ground_truth, **settings)[0]


def compute_score_batch(data_sources: Sequence, solution_strs: Sequence[str], ground_truths: Sequence, extra_infos: Sequence, *, url: str | None = None,
                        api_key: str | None = None, unparsed_reward: float | None = None, show_ground_truth: bool = False, **settings) -> list[float]:
    """Rewards for a batch; the responses to one question are judged together (up to 16 per record).
    `settings`: model, template, protocol, k, temperature, max_tokens, seed, n_ctx, parallel, n_gpu_layers (in-process
    only); anything else verl passes is ignored."""
    n = len(solution_strs)
    if not (len(ground_truths) == len(extra_infos) == n):
        raise InputError(f"{n} responses, {len(ground_truths)} ground truths and {len(extra_infos)} extra_infos: expected one of each per response")
    prompts = [_question(info, truth, show_ground_truth, i) for i, (info, truth) in enumerate(zip(extra_infos, ground_truths))]
    judge = _judge(url, api_key, settings)
    rewards = judge.rewards(prompts, [str(s) for s in solution_strs])
    fallback = float(judge.score_range[0]) if unparsed_reward is None else float(unparsed_reward)
    return [fallback if r is None else float(r) for r in rewards]


_LOCAL = ("model", "template", "protocol", "k", "temperature", "max_tokens", "seed", "n_ctx", "parallel", "n_gpu_layers")


def _judge(url: str | None, api_key: str | None, settings: dict):
    local = {k: settings.get(k) for k in _LOCAL}
    key = (url, api_key, tuple(sorted((k, str(v)) for k, v in local.items())))
    with _LOCK:
        if key not in _JUDGES:
            _JUDGES[key] = make_judge(url=url, api_key=api_key, **local)
        return _JUDGES[key]


def _question(info, ground_truth, show_ground_truth: bool, index: int):
    """The question of a response, from extra_info (numpy values, as verl's batches hold them, become lists)."""
    info = dict(info) if info is not None and hasattr(info, "keys") else {}
    question = next((info[k] for k in _QUESTION_KEYS if k in info and info[k] is not None), None)
    if hasattr(question, "tolist"):
        question = question.tolist()
    if not (isinstance(question, str) and question.strip()) and not (isinstance(question, list) and question):
        raise InputError(f'response {index}: extra_info holds no "question" (or "prompt", "query"): verl gives a reward function only the response, '
                         "so add the question to extra_info when preparing the data", "extra_info")
    if not show_ground_truth or ground_truth is None:
        return question
    reference = f"\n\nReference answer: {ground_truth}"
    if isinstance(question, str):
        return question + reference
    turns = [dict(m) for m in question]
    last_user = max((i for i, m in enumerate(turns) if m.get("role") == "user"), default=len(turns) - 1)
    turns[last_user]["content"] = str(turns[last_user].get("content", "")) + reference
    return turns
