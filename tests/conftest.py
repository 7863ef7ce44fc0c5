"""Shared test fixtures: where the read-only reference material lives, a fixed CPU set-up."""
from __future__ import annotations

import os
from pathlib import Path

# No test may reach the network: the Hub is offline here and in CI. Set before huggingface_hub is imported,
# since it reads these variables once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference material not found at {SHARED} (expected ../shared beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """One tiny 32-px model folder (tests/tiny_models.py) shared by the app tests: it takes seconds to train."""
    from tiny_models import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("tiny") / "tiny")
