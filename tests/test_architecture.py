"""The layering README's Layout promises, checked on the source: one-way imports, and the facts that must
live in one place (the score-line format) living there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "grm_cli"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports() -> dict[str, set[str]]:
    """Every project module each module imports, lazy (function-level) imports included."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("grm_cli"):
                graph[m].update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods)
                if node.module in mods and node.module != m:  # a package importing its own submodules
                    graph[m].add(node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
    return graph


def test_no_import_cycle_inside_the_package():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path[path.index(d):] + [d]) if d in path else d
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_imports_go_downward():
    for m, deps in _imports().items():
        if not m.startswith("grm_cli.cli") and m != "grm_cli.__main__":
            assert not any(d.startswith("grm_cli.cli") for d in deps), f"{m} imports the CLI"
        if m.startswith("grm_cli.core"):
            outside = sorted(d for d in deps if not (d.startswith("grm_cli.core") or d in ("grm_cli.errors", "grm_cli.yaml_file")))
            assert not outside, f"{m} (the pure core) imports {outside}"


# The folders' floors, bottom first (README's Layout): a module imports only from floors below its own, and
# two folders on one floor never import each other. "" is the package's own __init__ (names only, loaded
# lazily), which `grm_cli.__version__` readers may use from anywhere.
LAYERS = [
    ("errors", ""),
    ("yaml_file",),
    ("core",),
    ("io",),
    ("native",),
    ("models",),
    ("engine",),
    ("scoring",),
    ("evaluation",),
    ("principles", "metarm", "train", "serve", "report"),
    ("integrations",),
    ("doctor",),
    ("cli",),
    ("__main__",),
]


def _floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_import_goes_down_the_declared_layers():
    rank = {name: i for i, names in enumerate(LAYERS) for name in names}
    wrong = []
    for m, deps in _imports().items():
        a = _floor(m)
        assert a in rank, f"{m}: folder {a!r} is on no floor of LAYERS"
        for d in deps:
            b = _floor(d)
            if a != b and b != "" and rank[b] >= rank[a]:
                wrong.append(f"{m} -> {d}")
    assert not wrong, wrong


def test_no_module_imports_a_private_name_of_another():
    mods = _modules()
    wrong = []
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grm_cli") and node.module != m:
                wrong += [f"{m}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__") and f"{node.module}.{a.name}" not in mods]
    assert not wrong, wrong


def test_the_score_box_is_spelled_in_one_module():
    holders = sorted(str(f.relative_to(PKG)) for f in PKG.rglob("*.py") if "boxed" in f.read_text(encoding="utf-8"))
    assert holders == ["core/score_line.py"], holders


def test_help_and_the_package_import_nothing_heavy():
    """`grm --help` and `import grm_cli` stay quick (about 0.13 s on 2 cores; README's speed section):
    the native engine, numpy, the training stack and the web stack load only when a command needs them."""
    import subprocess
    import sys

    heavy = ("llama_cpp", "numpy", "torch", "transformers", "fastapi", "huggingface_hub", "grm_cli.scoring.pipeline")
    code = ("import sys, grm_cli, contextlib, io\n"
            "from grm_cli.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)


def test_the_documented_layout_names_every_module():
    """docs/layout.md is the map of the code: every folder and module of the package is on it."""
    layout = (PKG.parent / "docs" / "layout.md").read_text(encoding="utf-8")
    tree = layout.split("```text", 1)[1].split("```", 1)[0]
    missing = []
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG)
        if f.name in ("__init__.py", "__main__.py") or "assets" in rel.parts:
            continue
        folder_ok = len(rel.parts) == 1 or re.search(rf"^  {re.escape(rel.parts[0])}/", tree, re.M)
        if not folder_ok or not re.search(rf"\b{re.escape(f.stem)}\.py\b", tree):
            missing.append(str(rel))
    assert not missing, f"docs/layout.md does not name: {missing}"
