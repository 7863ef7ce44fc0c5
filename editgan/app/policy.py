"""What visitors may do: local use (any model id or folder) or public mode (only the operator's models).

Public mode is for a studio on the internet (``--share``, ``--public``, a Hugging Face Space): visitors choose among
the models the operator named at launch, never a folder path or a Hub id of their own, and no message names a
server path. The limits on what one request may cost apply in both modes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from editgan.app.engines import model_key

MAX_UPLOAD = "20mb"
"""The largest file a visitor may upload (photos, vectors, paint layers): Gradio refuses bigger ones unread."""
SESSION_TTL_S = 3600
"""A visitor's session (pictures, history, vectors, downloads) is freed an hour after its last change."""
STATE_CAPACITY = 1000
"""At most this many sessions are kept at once; the oldest go first."""

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,;()]+){2,}[\\/]?")


@dataclass(frozen=True)
class Policy:
    public: bool = False
    models: tuple[str, ...] = ()
    """The models offered in the model list; in public mode the only ones a visitor may load."""

    def check_model(self, choice: str) -> str:
        """A visitor's model choice → the model key to load; in public mode only an offered model."""
        if self.public and choice not in self.models:
            offered = ", ".join(self.models)
            raise ValueError(f"this studio offers the models {offered}; pick one of them")
        return model_key(choice)

    def scrub(self, message: str) -> str:
        """In public mode, a message without server paths (folders, caches, /proc): each becomes '…'."""
        return _PATH.sub("…", message) if self.public else message
