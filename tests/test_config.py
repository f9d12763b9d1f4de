"""Settings files: defaults < user file < ./grm.yaml < flags, each value checked and its origin shown."""

from __future__ import annotations

import json

import conftest

RECORD = '{"prompt": "q", "responses": ["a", "b"]}\n'


def grm(cwd, env_extra, *args, stdin=None):
    return conftest.grm(*args, stdin=stdin, env=env_extra, cwd=cwd)


def run_of(p):
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["run"]


def test_layers_and_flags(tmp_path, tiny_model, short_template):
    user = tmp_path / "user.yaml"
    user.write_text(f"model: {tiny_model}\nsamples: 3\nmax-tokens: 6\ntemplate: {short_template}\nctx: 2048\n")
    env = {"GRM_CONFIG": str(user)}
    assert run_of(grm(tmp_path, env, "score", "-", "--json", stdin=RECORD)) == {
        "model": "grm-tiny-test", "template": "short", "k": 3, "temperature": 0.5, "seed": 0, "max_tokens": 6, "shuffle": True, "force_scores": True,
    }
    (tmp_path / "grm.yaml").write_text("max-tokens: 5\nscore:\n  seed: 7\n")  # project file beats the user file
    run = run_of(grm(tmp_path, env, "score", "-", "--json", stdin=RECORD))
    assert (run["k"], run["max_tokens"], run["seed"]) == (3, 5, 7)
    run = run_of(grm(tmp_path, env, "score", "-", "--json", "-k", "1", "--max-tokens", "4", stdin=RECORD))  # flags win
    assert (run["k"], run["max_tokens"], run["temperature"]) == (1, 4, 0.0)
    shown = json.loads(grm(tmp_path, env, "config", "show", "--json").stdout)
    by = {(r["command"], r["flag"]): r for r in shown}
    assert by[("score", "--samples")]["value"] == 3 and by[("score", "--samples")]["from"] == f"user file {user}"
    assert by[("score", "--max-tokens")]["value"] == 5 and by[("score", "--max-tokens")]["from"].startswith("project file")
    assert by[("score", "--seed")]["value"] == 7 and by[("eval", "--seed")]["from"] == "default"


def test_bad_settings_name_the_file(tmp_path):
    user = tmp_path / "user.yaml"
    for text, words in [("sample: 3\n", 'unknown setting "sample"'), ("samples: many\n", '"samples"'),
                        ("score:\n  plot: x.png\n", "has no flag --plot"), ("samples: [1\n", "invalid YAML"), ("- 1\n", "expected a YAML mapping")]:
        user.write_text(text)
        p = grm(tmp_path, {"GRM_CONFIG": str(user)}, "score", "x.jsonl")
        assert p.returncode == 2 and str(user) in p.stderr and words in p.stderr and "Traceback" not in p.stderr, (text, p.stderr)


def test_help_works_even_with_a_broken_settings_file(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("nonsense: 1\n")
    p = grm(tmp_path, {"GRM_CONFIG": str(user)}, "score", "--help")
    assert p.returncode == 0 and "Example" in p.stdout


def test_settings_reach_the_train_group_and_config_show_lists_every_command(tmp_path):
    (tmp_path / "grm.yaml").write_text("model: /nowhere/grm.gguf\ntrain:\n  rft:\n    lora-rank: 7\n")
    p = grm(tmp_path, {}, "config", "show", "--json")
    assert p.returncode == 0, p.stderr
    rows = {(r["command"], r["flag"]): r for r in json.loads(p.stdout)}
    assert {"score", "serve", "train rft", "train rl", "train rft-data", "train metarm", "export"} <= {c for c, _ in rows}
    assert rows[("train rft", "--lora-rank")]["value"] == 7 and rows[("train rft", "--lora-rank")]["from"].startswith("project file")
    assert rows[("train rl", "--lora-rank")]["from"] == "default"  # the section narrows to train rft
    assert rows[("train rft-data", "--model")]["value"] == "/nowhere/grm.gguf"
    # and the value is what the subcommand runs with, not only what config show prints
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    p = grm(tmp_path, {}, "train", "rft-data", str(data), "-o", str(tmp_path / "out.jsonl"))
    assert p.returncode != 0 and "/nowhere/grm.gguf" in p.stderr, p.stderr
    (tmp_path / "grm.yaml").write_text("train:\n  rft:\n    lora-rnak: 7\n")
    p = grm(tmp_path, {}, "config", "show")
    assert p.returncode == 2 and '"train.rft.lora-rnak": `grm train rft` has no flag --lora-rnak' in p.stderr


def test_config_show_never_prints_an_api_key(tmp_path):
    (tmp_path / "grm.yaml").write_text("serve:\n  api-key: s3cr3t-key-value\n")
    for args in (("config", "show", "--json"), ("config", "show")):
        p = grm(tmp_path, {}, *args)
        assert p.returncode == 0, p.stderr
        assert "s3cr3t-key-value" not in p.stdout and "(set, not shown)" in p.stdout
