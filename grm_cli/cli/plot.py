"""The voting@k curve as an image (matplotlib is an optional extra: `pip install grm-cli[plot]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from grm_cli.errors import InputError


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'grm-cli[plot]' (or pip install matplotlib)") from None
    return plt


def check_plot_path(path: str | Path) -> None:
    """The image format comes from the file name; say what is wrong before any work is done."""
    plt = require_matplotlib()
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected an image file name such as curve.png", str(path))
    supported = sorted(plt.figure().canvas.get_supported_filetypes())
    plt.close("all")
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in supported:
        raise InputError(f"--plot needs a file name ending in an image format ({', '.join(supported)}), got {path.name!r}", str(path))


def plot_curves(summaries: Sequence, path: str | Path) -> Path:
    check_plot_path(path)
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for s in summaries:
        if not s.curve:
            continue
        ks = [p.k for p in s.curve]
        ax.plot(ks, [100 * p.accuracy for p in s.curve], marker="o", label=s.name or s.model)
        ax.fill_between(ks, [100 * p.low for p in s.curve], [100 * p.high for p in s.curve], alpha=0.2)
    ax.set_xscale("log", base=2)
    all_ks = sorted({p.k for s in summaries for p in s.curve})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set_xlabel("k (samples voted)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Inference-time scaling: voting@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path)
    except OSError as e:
        raise InputError(f"cannot write the plot: {e.strerror}", str(path)) from None
    finally:
        plt.close(fig)
    return path
