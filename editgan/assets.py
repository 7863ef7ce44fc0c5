"""Where the embedded assets live (the default model, example photos), found explicitly rather than guessed.

In order: the folder named by ``EDITGAN_ASSETS``; the checkout's ``assets/`` (running from the tree or after
``pip install -e .``); the copy that a wheel installs as data files under ``<prefix>/share/editgan-studio/assets``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VARIABLE = "EDITGAN_ASSETS"
CHECKOUT_ASSETS = Path(__file__).resolve().parent.parent / "assets"
INSTALLED_ASSETS = Path(sys.prefix) / "share" / "editgan-studio" / "assets"


def assets_dir() -> Path | None:
    """The assets folder, or None when neither the environment, the checkout nor an installed copy has one."""
    override = os.environ.get(ENV_VARIABLE, "").strip()
    candidates = [Path(override).expanduser()] if override else [CHECKOUT_ASSETS, INSTALLED_ASSETS]
    return next((folder for folder in candidates if (folder / "models").is_dir()), None)


def models_dir() -> Path | None:
    """``assets/models``: one folder per embedded model."""
    folder = assets_dir()
    return folder / "models" if folder else None


def example_photos() -> list[Path]:
    """The example photos the app offers (``assets/examples/*.png``), sorted by name; empty when there are none."""
    folder = assets_dir()
    return sorted((folder / "examples").glob("*.png")) if folder else []


MISSING_HELP = (f"the embedded models were not found: run from a checkout of EditGAN Studio (or install it with "
                f"pip install -e .), or set {ENV_VARIABLE} to a folder that holds models/")
