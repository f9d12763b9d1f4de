"""A released scalar meta RM (the kind `BBQGOD/DeepSeek-GRM-27B-MetaRM` is) as the rater of guided voting.

The paper's meta RM is a pointwise scalar RM: a value head over a language-model backbone, trained with
binary cross-entropy to say whether a sampled trajectory is right (§4, App. D.1). In transformers such a
model is a `*ForSequenceClassification` with one label; its logit is the log-odds of "right". It reads
the meta layout (`render_meta`: the query and the responses as the sample saw them, then the sample's
principles, critique and scores as the assistant's turn) through its own tokenizer's chat template, so
it rates samples of any GRM and any engine, remote ones included: it needs no hidden states of the GRM.

It runs in this process through transformers, on the best device torch finds (CUDA, then Apple's MPS,
then the CPU). Model files are data: weights only from safetensors (a pickled `pytorch_model.bin` is
refused), and never code from the repository (`trust_remote_code` stays off; a config that needs its own
code is refused).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from grm_cli.core.prompt import Template, render_meta
from grm_cli.core.records import Record
from grm_cli.errors import InputError, ModelError

INSTALL_HINT = "a scalar meta RM runs through transformers: pip install torch 'grm-cli[train]'"
_EDGE = 1 << 16  # bytes read from each end of a weights file for the fingerprint


def is_scalar_spec(spec: str) -> bool:
    """A model folder or a hub repository, not a head file of `grm train metarm`."""
    return spec.startswith("hf:/") or Path(spec).expanduser().is_dir()


def _hub_spec(spec: str) -> str:
    # a Path option folds hf://owner/repo into hf:/owner/repo; both mean the repository
    return "hf://" + spec[len("hf:/"):].lstrip("/") if spec.startswith("hf:/") else spec


def folder_fingerprint(folder: Path, weights: Sequence[Path]) -> str:
    """Identity of the model for run signatures and the sample cache: the config, and each weights file's
    name, size and both ends (a 54 GB checkpoint is not read whole to be recognised)."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for w in sorted(weights):
        size = w.stat().st_size
        h.update(f"{w.name}:{size}".encode())
        with w.open("rb") as f:
            h.update(f.read(_EDGE))
            f.seek(max(0, size - _EDGE))
            h.update(f.read(_EDGE))
    return h.hexdigest()[:16]


@dataclass
class ScalarMetaRMSource:
    """A checked scalar meta RM on disk, before its weights load (the CLI checks flags before loading)."""

    spec: str  # as the user gave it
    folder: Path
    architecture: str
    model_fingerprint: str
    config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.rstrip("/").split("/")[-1]

    def check_template(self, template: Template) -> None:
        """Any template: the scalar RM reads the rendered text, not the GRM's hidden states."""


def _config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"{folder}: no config.json: --meta-rm expects a meta RM file of `grm train metarm`, or a scalar reward model's folder (or hf://owner/repo)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"cannot read config.json ({type(e).__name__})", str(path)) from None
    if not isinstance(config, dict):
        raise InputError("expected a JSON object", str(path))
    return config


def check_source(folder: Path, spec: str) -> ScalarMetaRMSource:
    """Everything that can be told without loading weights: a one-label sequence classifier whose code
    ships with transformers, safetensors weights, a tokenizer with a chat template."""
    config = _config(folder)
    where = str(folder / "config.json")
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    arch = next((a for a in archs if a.endswith("ForSequenceClassification")), None)
    if arch is None:
        raise InputError(f"architectures {archs or 'missing'}: a scalar meta RM is a *ForSequenceClassification model with one label (a value head)", where)
    labels = config.get("num_labels", len(config.get("id2label") or {}) or 2)
    if labels != 1:
        raise InputError(f"{labels} labels: a scalar meta RM has one output (the log-odds that a trajectory is right)", where)
    try:
        import transformers
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    if config.get("auto_map") and not hasattr(transformers, arch):
        raise InputError(f"{arch} needs code from the repository (auto_map), and grm never runs a model's own code (trust_remote_code)", where)
    if not hasattr(transformers, arch):
        raise InputError(f"{arch}: this transformers ({transformers.__version__}) has no such model class", where)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for pat in ("*.bin", "*.pt", "*.pth") for p in folder.glob(pat))
        why = f" ({', '.join(pickled)} is a pickle, and grm never unpickles model files: convert it to safetensors)" if pickled else ""
        raise InputError(f"{folder}: no *.safetensors weights{why}")
    tok_cfg = folder / "tokenizer_config.json"
    has_template = (folder / "chat_template.jinja").is_file()
    if tok_cfg.is_file():
        try:
            has_template = has_template or bool(json.loads(tok_cfg.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise InputError("cannot read tokenizer_config.json", str(tok_cfg)) from None
    if not has_template:
        raise InputError(f"{folder}: the tokenizer has no chat template, so the meta layout (user turn, then the trajectory as the assistant's) cannot be rendered")
    return ScalarMetaRMSource(spec, folder, arch, folder_fingerprint(folder, weights), config)


def open_source(spec: str, *, progress: bool = True) -> ScalarMetaRMSource:
    """A folder, or hf://owner/repo[@rev] fetched into the hub cache (weights, configs, tokenizer)."""
    spec = _hub_spec(spec)
    if spec.startswith("hf://"):
        from grm_cli.models.convert import fetch

        return check_source(fetch(spec, progress=progress), spec)
    return check_source(Path(spec).expanduser(), spec)


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class ScalarMetaRM:
    """Rates sampled trajectories: P(right) = sigmoid of the scalar RM's logit over the meta layout."""

    def __init__(self, source: ScalarMetaRMSource, template: Template, *, device: str | None = None, batch: int = 8):
        try:
            import torch
            import transformers
        except ImportError:
            raise InputError(INSTALL_HINT) from None
        self.source = source
        self.template = template
        self.device = device or pick_device()
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.folder), trust_remote_code=False)
            cls = getattr(transformers, source.architecture)
            self.model = cls.from_pretrained(str(source.folder), dtype=dtype, use_safetensors=True, trust_remote_code=False).to(self.device).eval()
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"{source.spec}: the scalar meta RM does not load ({type(e).__name__}: {str(e)[:300]})") from None
        # without a pad token the model cannot find each row's last token in a padded batch
        self.batch = batch if self.model.config.pad_token_id is not None and self.tokenizer.pad_token_id is not None else 1
        self.limit = getattr(self.model.config, "max_position_embeddings", None)

    def text(self, rec: Record, order: Sequence[int], trajectory: str) -> str:
        """The meta layout through the scalar RM's own chat template: the ONE rendering rating uses."""
        p = render_meta(self.template, rec, order, trajectory)
        messages = [*p.messages, {"role": "assistant", "content": p.assistant_prefix}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False)

    def logits(self, texts: Sequence[str], rec_id: str = "") -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(texts), self.batch):
            chunk = list(texts[start:start + self.batch])
            # the chat template writes BOS itself; the tokenizer must not add a second one
            enc = self.tokenizer(chunk, add_special_tokens=False, padding=len(chunk) > 1, return_tensors="pt")
            if self.limit and enc["input_ids"].shape[1] > self.limit:
                raise InputError(f"record {rec_id}: the meta layout is {enc['input_ids'].shape[1]} tokens, more than the scalar meta RM's {self.limit}")
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits
            out.extend(float(x) for x in logits[:, 0].float().cpu())
        return out

    def rate(self, rec: Record, samples: Sequence[tuple[Sequence[int], str]]) -> list[float]:
        """One P(right) per (order, text), in the order given."""
        texts = [self.text(rec, order, text) for order, text in samples]
        return [1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, x)))) for x in self.logits(texts, rec.id)]
