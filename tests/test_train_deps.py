"""The training stack is an optional extra: without it, `grm train` says so in one line. Kept apart from
test_train.py, which is skipped where torch, peft or trl is missing: exactly where this matters."""

from __future__ import annotations

import pytest

from grm_cli.errors import InputError


def test_missing_training_stack_is_one_clear_line(monkeypatch):
    import importlib
    import types

    from grm_cli.train import deps

    real = importlib.import_module

    def fake(name, *a, **k):  # only trl missing; the rest stands in present (importing torch here would take seconds)
        if name == "trl":
            raise ImportError("No module named 'trl'")
        if name in ("torch", "transformers", "peft", "datasets"):
            return types.ModuleType(name)
        return real(name, *a, **k)

    monkeypatch.setattr(deps.importlib, "import_module", fake)
    with pytest.raises(InputError, match=r"trl not installed: training needs the optional extra: pip install torch==2\.13\.0 'grm-cli\[train\]'"):
        deps.require_training_stack()
