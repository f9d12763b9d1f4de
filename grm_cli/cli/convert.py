"""`grm convert`: Hugging Face weights (a folder or hf://owner/repo) to a GGUF file llama.cpp runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add `grm convert` to the app (the CLI package calls this once)."""

    @app.command()
    def convert(
        src: str = typer.Argument(..., metavar="SRC", help="A Hugging Face model folder (config.json, safetensors, tokenizer) or hf://owner/repo (optionally hf://owner/repo@revision)."),
        to: Path = typer.Option(..., "--to", help="The GGUF file to write (replaced only once the new one is complete)."),
        quant: str = typer.Option("F16", "--quant", "-q", help="llama.cpp quantization type: F32, F16, BF16, Q8_0 (written by the converter) or any llama-quantize type such as Q4_K_M, Q5_K_M, Q6_K."),
        threads: Optional[int] = typer.Option(None, "--threads", "-t", help="Threads for quantization (default: all cores)."),
    ) -> None:
        """Convert a Hugging Face model to GGUF with llama.cpp's own converter, then quantize with llama.cpp.
        hf:// sources download through huggingface-hub (its cache, progress bar, HF_ENDPOINT, HF_TOKEN,
        HF_HUB_OFFLINE). Prints the written file's path.

        Examples:

          grm convert ./my-finetuned-model --to judge.Q4_K_M.gguf --quant Q4_K_M

          grm convert hf://BBQGOD/DeepSeek-GRM-16B --to DeepSeek-GRM-16B.Q4_K_M.gguf -q Q4_K_M
        """
        from rich.console import Console
        from rich.text import Text

        from grm_cli.models.convert import convert as do_convert

        err = Console(stderr=True, soft_wrap=True)
        t0 = time.perf_counter()
        with err.status(Text(f"converting {src} to {to.name} ({quant.upper()})"), spinner="dots") if err.is_terminal else _nothing():
            done = do_convert(src, to, quant=quant, threads=threads, progress=True)
        mib = done.path.stat().st_size / 2**20
        err.print(Text(f"grm: {done.architecture} -> {done.path} ({done.quant}, {mib:.1f} MiB, {time.perf_counter() - t0:.1f} s)"), highlight=False)
        typer.echo(str(done.path))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
