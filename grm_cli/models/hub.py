"""Talking to the Hugging Face hub: what offline means, and every hub failure as one clear ModelError.

`grm pull` (a GGUF file), converting aliases and `grm convert hf://...` (a repository snapshot) all
download through huggingface-hub and all report its failures through `hub_errors`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from grm_cli.errors import ModelError


def hub_offline() -> bool:
    """HF_HUB_OFFLINE, read as huggingface-hub reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def hub_errors(what, *, hint: str = "") -> Iterator[None]:
    """Turn huggingface-hub's exceptions inside the block into a ModelError naming `what` (a repo or a
    file); `hint` ends the not-cached messages with what the user can do instead."""
    from huggingface_hub import errors as e

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        yield
    except (e.LocalEntryNotFoundError, e.OfflineModeIsEnabled):
        if hub_offline():
            raise ModelError(f"{what}: offline (HF_HUB_OFFLINE is set) and not in the hub cache{hint}") from None
        raise ModelError(f"{what}: cannot reach the hub ({endpoint}) and it is not in the cache{hint}") from None
    except e.GatedRepoError:  # before RepositoryNotFoundError: huggingface-hub derives it from that one
        raise ModelError(f"{what}: the repository is gated: accept its terms on the hub and log in with `hf auth login`") from None
    except e.RepositoryNotFoundError:
        raise ModelError(f"{what}: no such repository on the hub (or it is private: log in with `hf auth login`)") from None
    except e.RevisionNotFoundError:
        raise ModelError(f"{what}: no such revision") from None
    except e.EntryNotFoundError:
        raise ModelError(f"{what}: no such file in the repository") from None
    except (e.HfHubHTTPError, OSError) as err:
        raise ModelError(f"{what}: download failed ({err})") from None
