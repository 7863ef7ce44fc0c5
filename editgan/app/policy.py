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

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,;()]+){2,}[\\/]?")


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
        """The name the page shows for a model key."""
        return next((label for label, k in self.offered.items() if k == key), key)

    def scrub(self, message: str) -> str:
        """In public mode, a message without server paths (folders, caches, /proc): each becomes '…'."""
        return _PATH.sub("…", message) if self.public else message
