"""One training run's folder: what it holds, and the rules that keep a finished result safe.

    OUT/settings.yaml      the effective settings (defaults, file, flags)
    OUT/accepted.jsonl     RFT only: the sampled, judged trajectories (inspectable, resumable)
    OUT/metrics.jsonl      one JSON line per log step: loss, reward mean, KL, acceptance counts...
    OUT/checkpoints/       the trainer's checkpoints (resumed with --resume)
    OUT/adapter/           the finished LoRA adapter (PEFT files + grm-adapter.json); never overwritten
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from grm_cli.errors import InputError


def is_main_process() -> bool:
    """Under `accelerate launch` (or torchrun) every process runs the command: only rank 0 writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def accepted(self) -> Path:
        return self.root / "accepted.jsonl"

    def finished(self) -> bool:
        return (self.adapter / "adapter_model.safetensors").is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoints.is_dir() and any(p.name.startswith("checkpoint-") for p in self.checkpoints.iterdir())

    def open(self, *, resume: bool) -> None:
        """Refuse to train over a finished adapter; refuse to start over checkpoints without --resume."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root}: exists and is not a folder (expected an output folder for the run)")
        if self.finished():
            raise InputError(f"{self.adapter}: a finished adapter is already here; choose another --out (finished results are never overwritten)")
        if self.has_checkpoint() and not resume:
            raise InputError(f"{self.checkpoints}: checkpoints of an unfinished run are here: add --resume to go on from the last one, or choose another --out")
        self.root.mkdir(parents=True, exist_ok=True)

    def save_settings(self, settings, extra: dict) -> None:
        import yaml

        if not is_main_process():
            return
        body = {**extra, **settings.to_json()}
        (self.root / "settings.yaml").write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")

    def log(self, line: dict) -> None:
        if not is_main_process():
            return
        stamped = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **line}
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(stamped, ensure_ascii=False) + "\n")


def metrics_callback(run: RunDir, stage: str):
    """A transformers callback that appends every log (loss, learning rate, GRPO reward/KL...) to metrics.jsonl."""
    from transformers import TrainerCallback

    class MetricsToJsonl(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            # How many processes joined the trainer (read from the initialised process group, not the
            # environment): under `accelerate launch` it tells that every process trained, not only rank 0.
            if state.is_world_process_zero:
                run.log({"stage": stage, "event": "start", "processes": args.world_size, "per_device_batch": args.per_device_train_batch_size,
                         "grad_accum": args.gradient_accumulation_steps, "max_steps": state.max_steps})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                run.log({"stage": stage, "step": state.global_step, "epoch": state.epoch, **{k: v for k, v in logs.items() if isinstance(v, (int, float, str))}})

    return MetricsToJsonl()
