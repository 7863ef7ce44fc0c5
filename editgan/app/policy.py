"""What visitors may do: local use (any model id or folder) or public mode (only the operator's models).

Public mode is for a studio on the internet (``--share``, ``--public``, a Hugging Face Space): visitors choose among
the models the operator named at launch, never a folder path or a Hub id of their own, and no message names a
server path. The limits on what one request may cost apply in both modes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from editgan.app.engines import model_key

MAX_UPLOAD = "20mb"
"""The largest file a visitor may upload (photos, vectors, paint layers): Gradio refuses bigger ones unread."""
SESSION_TTL_S = 3600
"""A visitor's session (pictures, history, vectors, downloads) is freed an hour after its last change."""
STATE_CAPACITY = 1000
"""At most this many sessions are kept at once; the oldest go first."""

_PATH = re.compile(r"""(?:[A-Za-z]:)?(?<!\d)(?:[\\/][^'"\\/:,;()\n]+?(?=[\\/]))+[\\/][^\s'"\\/:,;()]*""")
"""A server path: two or more parts, inner folders possibly with spaces ("/home/me/My Models/x.pt"), the last part
up to a space; not a number's slash ("10/500")."""


def offered_models(sources: list[str]) -> dict[str, str]:
    """The operator's models as the page names them → their model keys. A local folder is named by its last part
    (the page never shows where it lives on the server); an embedded name or a Hub id by itself."""
    offered: dict[str, str] = {}
    for source in sources:
        key = model_key(source)
        label = Path(key).name if Path(key).is_absolute() else key
        while label in offered and offered[label] != key:
            label += "+"
        offered[label] = key
    return offered


@dataclass(frozen=True)
class Policy:
    public: bool = False
    offered: dict[str, str] = field(default_factory=dict)
    """The models in the model list, by the name the page shows → model key; in public mode the only ones allowed."""

    def check_model(self, choice: str) -> str:
        """A visitor's model choice → the model key to load; in public mode only an offered model, by its name."""
        if choice in self.offered:
            return self.offered[choice]
        if self.public:
            raise ValueError(f"this studio offers the models {', '.join(self.offered)}; pick one of them")
        return model_key(choice)

    def name_of(self, key: str) -> str:
        """The name the page shows for a model key (in public mode, a folder by its last part, never its path)."""
        shown = Path(key).name if self.public and Path(key).is_absolute() else key
        named = next((label for label, k in self.offered.items() if k == key), None)
        if named is not None:
            return named
        while shown in self.offered:  # a visitor's own model named like an offered one: told apart
            shown += "+"
        return shown

    def writable_folder(self, key: str, own_root: Path) -> Path:
        """The model folder of ``key`` when visitors may write into it (a preset): in public mode only a folder of
        their own under ``own_root`` (a model they taught in this session), never the operator's; locally any
        local model folder. ValueError with a sentence otherwise."""
        folder = Path(key)
        if not folder.is_absolute() or not (folder / "config.json").is_file():
            raise ValueError("presets are written into a local model folder, and this model is not one (an "
                             "embedded model or a Hub repo): save the edit as a vector, or teach and save a model "
                             "folder first")
        if self.public and not folder.resolve().is_relative_to(Path(own_root).resolve()):
            raise ValueError("this public studio does not write into its models' folders: save the edit as a vector "
                             "instead (or teach a model of your own in the Teach tab, which you may add presets to)")
        return folder

    def scrub(self, message: str) -> str:
        """In public mode, a message without server paths (folders, caches, /proc): each becomes '…'."""
        return _PATH.sub("…", message) if self.public else message
