"""Opening a meta RM for guided voting: a head file of `grm train metarm` (over the GRM's own hidden states)
or a released scalar meta RM (a model folder or hf://owner/repo), checked before any model loads, and the
rater built over the loaded engine. Used by `grm score`, `eval` and `serve` alike."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from grm_cli.errors import InputError


def open_meta_rm(path: Path, template, backend: str = "llama"):
    """The meta RM source at `path`, checked against the template it will rate (the flags' counts are
    `ScoreOptions.check`'s)."""
    from grm_cli.metarm.model import MetaRMFile
    from grm_cli.metarm.scalar import is_scalar_spec, open_source

    scalar = is_scalar_spec(str(path))
    if backend != "llama" and not scalar:
        raise InputError("--meta-rm with a head file reads the model's hidden states in this process: it works with --backend llama, not with a remote server (a scalar meta RM folder works with any backend)")
    saved = open_source(str(path)) if scalar else MetaRMFile.load(path)
    saved.check_template(template)
    return saved


def identity(saved, path: Path) -> str:
    """Which meta RM a run used, for its signature: the model it was trained on and the file's name."""
    return f"{saved.model_fingerprint[:12]}:{Path(path).name}"


def meta_rater(saved, engine, template, *, n_ctx: int, n_threads: Optional[int] = None, verbose: bool = False,
               notify: Callable[[str], None] = lambda message: None):
    """The rater guided voting uses: a scalar meta RM as it is, or the head over the loaded model's hidden
    states (a head trained on another model is refused)."""
    from grm_cli.metarm.scalar import ScalarMetaRM, ScalarMetaRMSource

    if isinstance(saved, ScalarMetaRMSource):
        notify(f"meta RM: {saved.spec} ({saved.architecture}) through transformers")
        rater = ScalarMetaRM(saved, template)
        notify(f"meta RM on {rater.device}")
        return rater
    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.model import model_of
    from grm_cli.metarm.model import MetaRM

    base = model_of(engine)
    saved.check(base.fingerprint, base.name, template)
    return MetaRM(saved, HiddenStates(engine, n_ctx=n_ctx, n_threads=n_threads, verbose=verbose), template)
