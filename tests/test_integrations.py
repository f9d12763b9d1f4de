"""The RL hooks (grm_cli.integrations) on the real tiny model: TRL's reward function and verl's
compute_score, in-process and against a running `grm serve`, agreeing with each other."""

from __future__ import annotations

import pytest
from test_serve import server

from grm_cli.errors import InputError

PROMPTS = ["What is 2+2?"] * 2 + [[{"role": "user", "content": "Name a colour."}]] * 2
COMPLETIONS = ["4", "5", [{"role": "assistant", "content": "Blue."}], [{"role": "assistant", "content": "Seven."}]]


@pytest.fixture(scope="module")
def url(tiny_model, short_template):
    with server(tiny_model, "--max-tokens", "8", "--engine", "simple", "--template", str(short_template)) as u:  # as tiny_engine and `local` below
        yield u


@pytest.fixture
def local(short_template):
    return {"max_tokens": 8, "template": str(short_template)}


def test_trl_reward_in_process_equals_direct_scoring(tiny_engine, local, short_template):
    from grm_cli.core.prompt import load_template
    from grm_cli.integrations.trl import trl_reward
    from grm_cli.scoring.pipeline import score_records
    from grm_cli.scoring.settings import ScoreSettings
    from grm_cli.serve.rewards import group_completions

    reward = trl_reward(tiny_engine, **local)
    got = reward(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=None)
    assert len(got) == 4 and all(isinstance(x, float) and 1 <= x <= 10 for x in got)
    records, _ = group_completions(PROMPTS, COMPLETIONS)
    direct = list(score_records(records, tiny_engine, load_template(str(short_template)), ScoreSettings(max_tokens=8)))
    assert got == [float(direct[0].verdict.totals[0]), float(direct[0].verdict.totals[1]), float(direct[1].verdict.totals[0]), float(direct[1].verdict.totals[1])]
    assert reward(prompts=PROMPTS, completions=COMPLETIONS) == got  # the same completions, the same rewards


def test_trl_reward_through_the_server_is_the_same_path(url, tiny_engine, local):
    from grm_cli.integrations.trl import trl_reward

    remote = trl_reward(url=url)(prompts=PROMPTS, completions=COMPLETIONS)
    assert remote == trl_reward(tiny_engine, **local)(prompts=PROMPTS, completions=COMPLETIONS)
    assert trl_reward(url=url)(prompts=["q", "q"], completions=["a", ""])[1] == 1.0  # an empty completion: the lowest score
    with pytest.raises(InputError, match="drop k"):
        trl_reward(url=url, k=4)  # a server uses its own settings: say so instead of ignoring k


def test_verl_compute_score_through_the_server(url):
    from grm_cli.integrations.judge import RemoteJudge
    from grm_cli.integrations.verl import compute_score, compute_score_batch

    one = compute_score("openai/gsm8k", "4", "4", {"question": "What is 2+2?", "split": "train"}, url=url)
    assert isinstance(one, float) and 1 <= one <= 10
    assert compute_score("openai/gsm8k", "4", "4", {"question": "What is 2+2?"}, url=url, num_turns=1) == one  # verl's extra kwargs are ignored
    infos = [{"question": "What is 2+2?"}, {"question": "What is 2+2?"}, {"prompt": [{"role": "user", "content": "Name a colour."}]}]
    batch = compute_score_batch(["gsm8k"] * 3, ["4", "5", "Blue."], ["4", "4", None], infos, url=url)
    judged = RemoteJudge(url).rewards(["What is 2+2?", "What is 2+2?", [{"role": "user", "content": "Name a colour."}]], ["4", "5", "Blue."])
    assert batch == judged  # the responses to one question were judged together, as one record
    with pytest.raises(InputError, match='extra_info holds no "question"'):
        compute_score("gsm8k", "4", "4", {"split": "train"}, url=url)
    with pytest.raises(InputError, match="3 responses, 2 ground truths"):
        compute_score_batch(["a"] * 3, ["x"] * 3, ["y"] * 2, [{}] * 3, url=url)


@pytest.mark.slow
def test_verl_compute_score_in_process_loads_the_model_once(tiny_model, local):
    from grm_cli.integrations import verl

    kwargs = {"model": str(tiny_model), "n_ctx": 2048, "n_gpu_layers": 0, **local}
    first = verl.compute_score("gsm8k", "4", "4", {"question": "What is 2+2?"}, **kwargs)
    judges = len(verl._JUDGES)
    second = verl.compute_score("gsm8k", "4", "4", {"question": "What is 2+2?"}, **kwargs)
    assert first == second and 1 <= first <= 10 and len(verl._JUDGES) == judges


def test_verl_ground_truth_is_shown_only_when_asked():
    from grm_cli.integrations.verl import _question

    assert _question({"question": "Q?"}, "42", False, 0) == "Q?"
    assert _question({"question": "Q?"}, "42", True, 0) == "Q?\n\nReference answer: 42"
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}]
    assert _question({"prompt": turns}, "42", True, 0)[1]["content"] == "Q?\n\nReference answer: 42" and turns[1]["content"] == "Q?"


def test_client_errors_are_told_apart_by_status():
    import socket

    from grm_cli.integrations.client import RewardClient, ServerError

    with pytest.raises(InputError, match="expected http://HOST:PORT"):
        RewardClient("localhost:8000")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerError, match="no answer from grm serve") as exc:
        RewardClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.01).rewards(["q"], ["a"])
    assert exc.value.status is None


def test_client_surfaces_the_servers_400(url):
    from grm_cli.integrations.client import RewardClient, ServerError

    with pytest.raises(ServerError, match='field "completions", item 0') as exc:
        RewardClient(url).post("/rewards", {"prompts": ["q"], "completions": [7]})
    assert exc.value.status == 400
