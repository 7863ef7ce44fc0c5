"""Where a model's files come from: the embedded default in ``assets/``, a local folder, or a Hugging Face Hub repo.

Hub downloads go through ``huggingface_hub.snapshot_download`` with allow-patterns, so they use the normal HF
cache and honour ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and the user's token (private repos).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "models"
DEFAULT_MODEL = "toy-faces"
MODEL_FILES = ["config.json", "*.safetensors", "vectors/*.safetensors", "README.md"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelLoadError(RuntimeError):
    """A model cannot be found, downloaded or read. The message says which and why, for the user."""


def embedded_models() -> list[str]:
    if not ASSETS.is_dir():
        return []
    return sorted(p.name for p in ASSETS.iterdir() if (p / "config.json").is_file())


def resolve(source: str | Path | None = None, revision: str | None = None, token: str | bool | None = None,
            progress: Callable[[str], None] | None = None) -> Path:
    """Model source → local folder holding config.json and the weights.

    ``None`` is the embedded default; a name from ``assets/models`` an embedded model; an existing folder is
    used as is; anything else of the form ``owner/name`` is a Hub repo id (optionally at ``revision``).
    """
    if source is None or str(source).strip() == "":
        source = DEFAULT_MODEL
    text = str(source).strip()
    if (ASSETS / text / "config.json").is_file():
        return ASSETS / text
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"folder {path} has no config.json; convert foreign checkpoints first "
                                 f"(python -m editgan convert --help)")
        return path
    if not _REPO_ID.match(text):
        raise ModelLoadError(f"unknown model {text!r}: not an embedded model ({', '.join(embedded_models()) or 'none'}),"
                             f" not a folder, and not a Hub repo id of the form owner/name")
    return _download(text, revision, token, progress)


def _download(repo_id: str, revision: str | None, token: str | bool | None,
              progress: Callable[[str], None] | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    at = f"@{revision}" if revision else ""
    if progress is not None:
        progress(f"downloading {repo_id}{at} from the Hugging Face Hub")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES, token=token))
    except GatedRepoError as e:
        raise ModelLoadError(f"{repo_id} is gated: accept its terms on the Hub and log in (hf auth login)") from e
    except RepositoryNotFoundError as e:
        raise ModelLoadError(f"no Hub repo {repo_id} (or it is private: log in with a token that can read it)") from e
    except RevisionNotFoundError as e:
        raise ModelLoadError(f"{repo_id} has no revision {revision!r}") from e
    except LocalEntryNotFoundError as e:
        raise ModelLoadError(f"{repo_id}{at} is not in the local Hugging Face cache and the Hub cannot be reached "
                             f"(offline?): {e}") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"could not download {repo_id}{at}: {type(e).__name__}: {e}") from e
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"Hub repo {repo_id}{at} has no config.json: it is not an EditGAN Studio model "
                             f"(convert it with python -m editgan convert, then push it)")
    return folder
