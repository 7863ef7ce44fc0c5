"""Where a model's files come from: the embedded default in ``assets/``, a local folder, or a Hugging Face Hub repo.

Hub downloads go through ``huggingface_hub.snapshot_download`` with allow-patterns (config, safetensors, vectors,
model card: never pickles), so they use the normal HF cache and honour ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE``, ``revision`` and the user's token (private repos). Progress reaches the caller as short text
messages, including bytes downloaded (through a tqdm class handed to ``snapshot_download``).

``push`` publishes a model folder (``python -m editgan push``): it checks that the folder loads, writes a model card
if there is none, then ``HfApi.create_repo(exist_ok=True)`` and ``HfApi.upload_folder`` with the same patterns.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Callable

from editgan.assets import MISSING_HELP, models_dir
from editgan.errors import ModelLoadError, PushError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "toy-faces"
MODEL_FILES = ["config.json", "*.safetensors", "vectors/*.safetensors", "README.md"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_EMBEDDED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def embedded_models() -> list[str]:
    """Names of the embedded models (folders of ``assets/models`` that hold a config.json)."""
    folder = models_dir()
    if folder is None:
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "config.json").is_file())


def _embedded(name: str) -> Path | None:
    """The folder of embedded model ``name``; None when ``name`` is not one (a path, a repo id, unknown)."""
    folder = models_dir()
    if not _EMBEDDED_NAME.match(name):
        return None
    if folder is None:
        if name == DEFAULT_MODEL:
            raise ModelLoadError(MISSING_HELP)
        return None
    if (folder / name / "config.json").is_file():
        return folder / name
    if (folder / name).is_dir():
        raise ModelLoadError(f"embedded model {name!r} is not built yet: its folder has no config.json "
                             f"(its training may still be running; see python -m editgan train --help)")
    return None


def resolve(source: str | Path | None = None, revision: str | None = None, token: str | bool | None = None,
            progress: Callable[[str], None] | None = None, cache_dir: str | Path | None = None) -> Path:
    """Model source → local folder holding config.json and the weights.

    ``None`` is the embedded default; a name from ``assets/models`` an embedded model; an existing folder is
    used as is; anything else of the form ``owner/name`` is a Hub repo id (optionally at ``revision``: a branch,
    tag or commit). ``token``: None uses the login token or ``HF_TOKEN`` (private repos), a string that token,
    False none. ``cache_dir`` overrides the Hugging Face cache (default: ``HF_HUB_CACHE``, i.e. ``$HF_HOME/hub``).
    ``progress`` receives short messages, including bytes downloaded.
    """
    if source is None or str(source).strip() == "":
        source = DEFAULT_MODEL
    text = str(source).strip()
    embedded = _embedded(text)
    if embedded is not None:
        return embedded
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"folder {path} has no config.json; convert foreign checkpoints first "
                                 f"(python -m editgan convert --help)")
        return path
    if not _REPO_ID.match(text):
        known = ", ".join(embedded_models()) or "none"
        raise ModelLoadError(f"unknown model {text!r}: not an embedded model ({known}),"
                             f" not a folder, and not a Hub repo id of the form owner/name")
    return _download(text, revision, token, progress, cache_dir)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _NullWriter:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def progress_bar_class(report: Callable[[str], None], label: str, min_interval: float = 0.5) -> type:
    """A tqdm class for ``snapshot_download(tqdm_class=...)`` that draws nothing and sends each bar's state to
    ``report`` as a short message (at most every ``min_interval`` seconds per bar, and once when it closes).

    huggingface_hub creates several bars from it: the file count ("Fetching N files") and the aggregated bytes
    (unit "B"), so the messages read like "org/name: Fetching 4 files 1/4" and "org/name: Downloading bytes
    12.3 MB of 250.0 MB".
    """
    from tqdm.std import tqdm as std_tqdm

    class ReportingBar(std_tqdm):
        monitor_interval = 0  # no tqdm monitor thread

        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a name; plain tqdm does not
            kwargs["disable"] = False
            kwargs["file"] = _NullWriter()
            self._last_report = 0.0
            super().__init__(*args, **kwargs)

        def message(self) -> str:
            desc = (self.desc or "").rstrip(": ").strip()
            if self.unit == "B":
                done = _size(self.n) + (f" of {_size(self.total)}" if self.total else "")
            else:
                done = f"{self.n:g}" + (f"/{self.total:g}" if self.total else "")
            return f"{label}: {desc + ' ' if desc else ''}{done}"

        def _report(self, force: bool = False) -> None:
            now = time.monotonic()
            if force or now - self._last_report >= min_interval:
                self._last_report = now
                try:
                    report(self.message())
                except Exception:  # a broken UI callback must not break the download
                    log.debug("progress callback failed", exc_info=True)

        def update(self, n=1):
            result = super().update(n)
            self._report()
            return result

        def close(self):
            if not self.disable and (self.n or self.total):
                self._report(force=True)
            super().close()

    return ReportingBar


def _download(repo_id: str, revision: str | None, token: str | bool | None,
              progress: Callable[[str], None] | None, cache_dir: str | Path | None = None) -> Path:
    from huggingface_hub import constants, errors, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    # newer huggingface_hub tells an incomplete cached snapshot apart from a missing one
    IncompleteSnapshotError = getattr(errors, "IncompleteSnapshotError", None) or type("_Never", (Exception,), {})

    at = f"@{revision}" if revision else ""
    offline = constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else constants.HF_HUB_OFFLINE
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser()
    if progress is not None:
        progress(f"looking for {repo_id}{at} in the Hugging Face cache ({cache}); HF_HUB_OFFLINE is set" if offline
                 else f"downloading {repo_id}{at} from the Hugging Face Hub (cache: {cache})")
    bars = progress_bar_class(progress, repo_id) if progress is not None else None
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES, token=token,
                                        cache_dir=cache_dir, tqdm_class=bars))
    except GatedRepoError as e:
        raise ModelLoadError(f"{repo_id} is gated: accept its terms on the Hub and log in (hf auth login)") from e
    except RepositoryNotFoundError as e:
        raise ModelLoadError(f"no Hub repo {repo_id} (or it is private: log in with a token that can read it)") from e
    except RevisionNotFoundError as e:
        raise ModelLoadError(f"{repo_id} has no revision {revision!r}") from e
    except IncompleteSnapshotError as e:
        raise ModelLoadError(f"the cached copy of {repo_id}{at} in {cache} is incomplete and the Hub cannot be "
                             f"reached to complete it: {e}") from e
    except LocalEntryNotFoundError as e:
        if offline:
            raise ModelLoadError(f"{repo_id}{at} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is "
                                 f"set: unset it to download, or point HF_HOME / HF_HUB_CACHE at a cache that holds "
                                 f"the model") from e
        raise ModelLoadError(f"{repo_id}{at} is not in the Hugging Face cache ({cache}) and the Hub cannot be "
                             f"reached (offline?): {e}") from e
    except HfHubHTTPError as e:
        raise ModelLoadError(f"the Hub refused {repo_id}{at}: {e}") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"could not download {repo_id}{at}: {type(e).__name__}: {e}") from e
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"Hub repo {repo_id}{at} has no config.json: it is not an EditGAN Studio model "
                             f"(convert it with python -m editgan convert, then push it)")
    if progress is not None:
        progress(f"{repo_id}{at}: files in {folder}")
    return folder



def push(folder: str | Path, repo_id: str, private: bool = False, branch: str | None = None,
         token: str | bool | None = None, message: str | None = None,
         progress: Callable[[str], None] | None = None) -> str:
    """Publish a model folder to the Hub: check that it loads, add a model card if it has none, create the repo
    (``private`` applies only when it is created), create ``branch`` if needed, upload the model files
    (``MODEL_FILES``: config, safetensors, vectors, README; nothing else in the folder). Returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from editgan.modelio.checkpoint import read_model
    from editgan.modelio.model_card import write_model_card

    def say(text: str) -> None:
        log.info(text)
        if progress is not None:
            progress(text)

    folder = Path(folder)
    if not _REPO_ID.match(repo_id):
        raise PushError(f"{repo_id!r} is not a Hub repo id of the form owner/name")
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    say(f"checking that {folder} loads")
    parts = read_model(folder)  # ModelLoadError says what is wrong
    if write_model_card(folder, parts.config, repo_id=repo_id) is not None:
        say(f"wrote a model card {folder / 'README.md'}")
    ignored = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                     if p.is_file() and not _is_model_file(p.relative_to(folder).as_posix()))
    if ignored:
        log.warning("not uploading files outside the model layout: %s", ", ".join(ignored))
    api = HfApi(token=token)
    try:
        say(f"creating {repo_id} on the Hub (if needed)")
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if branch and branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
        say(f"uploading {folder} to {repo_id}" + (f"@{branch}" if branch else ""))
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model", revision=branch,
                                 allow_patterns=MODEL_FILES,
                                 commit_message=message or f"Upload {parts.config.name} (EditGAN Studio)")
    except HfHubHTTPError as e:
        raise PushError(f"the Hub refused the upload to {repo_id}: {e}") from e
    except (OSError, ValueError) as e:
        raise PushError(f"could not upload to {repo_id}: {type(e).__name__}: {e}") from e
    url = str(getattr(info, "commit_url", "") or info)
    say(f"uploaded: {url}")
    return url


def _is_model_file(relative: str) -> bool:
    from fnmatch import fnmatch
    return any(fnmatch(relative, pattern) for pattern in MODEL_FILES)
