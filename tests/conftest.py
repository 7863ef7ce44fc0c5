"""Shared test fixtures: the reference data in tests/fixtures, optional third-party files beside the repository, a
fixed CPU set-up. Every test runs with nothing beside the repository."""
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
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO_ROOT.parent / "shared"
"""Read-only material that sits beside the repository in this project's CI (third-party reference files). Tests
use it when it is there and same-format stand-ins they make when it is not."""

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def parity_fixture() -> Path:
    """The StyleGAN2 parity case (config, a recipe for the weights, inputs and the expected images), copied into
    tests/fixtures from the project's reference material."""
    return FIXTURES / "stylegan2_parity_32"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """One tiny 32-px model folder (tests/tiny_models.py) shared by the app tests: it takes seconds to train."""
    from tiny_models import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("tiny") / "tiny")
