"""Loading by Hub repo id (from a Hugging Face cache in its real on-disk layout, offline), the model card, and push
(with HfApi replaced by a fake that checks every call against the real HfApi signatures)."""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_models import SIZE, STYLE_DIM, tiny_generator

import editgan
from editgan.cli import main as cli_main
from editgan.engine.model import EditGANModel
from editgan.errors import ModelLoadError, PushError
from editgan.modelio.hub import MODEL_FILES, progress_bar_class, push
from editgan.modelio.model_card import render_model_card

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMIT_MAIN = "a" * 8 + "1" * 32
COMMIT_V1 = "b" * 8 + "2" * 32


def _blob_name(relative: str, data: bytes) -> str:
    """The cache names LFS files (weights) by sha256 and plain git files by their git blob sha1."""
    if relative.endswith(".safetensors"):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_to_cache(cache: Path, repo_id: str, commit: str, folder: Path, refs: tuple[str, ...] = ("main",),
                 skip: tuple[str, ...] = (), replace: dict[str, bytes] | None = None) -> Path:
    """Put ``folder`` into ``cache`` as huggingface_hub lays out a downloaded snapshot: blobs/<hash>,
    snapshots/<commit>/<path> → symlink to the blob, refs/<branch> holding the commit hash."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        if relative in skip:
            continue
        data = (replace or {}).get(relative, file.read_bytes())
        blob = repo / "blobs" / _blob_name(relative, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return repo / "snapshots" / commit


def random_model_folder(folder: Path, name: str, seed: int, with_preset: bool) -> Path:
    """A tiny untrained model (what is loaded matters here, not what it draws), saved in the checkpoint layout."""
    import torch

    from editgan.modelio.config import GeneratorConfig, ModelConfig, SegmenterSettings
    from editgan.modelio.vectors import EditingVector
    from editgan.networks.segmenter import Segmenter, SegmenterConfig

    g = tiny_generator(seed)
    torch.manual_seed(seed)
    segmenter = Segmenter(SegmenterConfig(tuple(g.feature_channels()), 2, n_members=2, hidden=(8, 4)))
    config = ModelConfig(name=name, generator=GeneratorConfig(size=SIZE, style_dim=STYLE_DIM, n_mlp=2,
                                                              channels=dict(g.channels)),
                         class_names=["other", "reddish"], palette=[(0, 0, 0), (255, 0, 0)],
                         segmenter=SegmenterSettings(2, (8, 4)), license="test")
    presets = [EditingVector("redder", np.full((g.n_latent, STYLE_DIM), 0.01, np.float32), classes=[1],
                             display_name="Redder", refine_steps=5)] if with_preset else []
    return EditGANModel(config, g, segmenter, None, presets, device="cpu").save_pretrained(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"main": random_model_folder(root / "main", "tiny", 0, True),
            "v1": random_model_folder(root / "v1", "tiny-v1", 1, False)}


@pytest.fixture(scope="module")
def cache(folders, tmp_path_factory) -> Path:
    """An HF cache (HF_HOME/hub) holding org/tiny (main and v1), plus broken repos."""
    hub = tmp_path_factory.mktemp("hf_home") / "hub"
    add_to_cache(hub, "org/tiny", COMMIT_MAIN, folders["main"])
    add_to_cache(hub, "org/tiny", COMMIT_V1, folders["v1"], refs=("v1",))
    data = (folders["main"] / "generator.safetensors").read_bytes()
    add_to_cache(hub, "org/truncated", COMMIT_MAIN, folders["main"],
                 replace={"generator.safetensors": data[: len(data) // 2]})
    add_to_cache(hub, "org/no-segmenter", COMMIT_MAIN, folders["main"], skip=("segmenter.safetensors",))
    add_to_cache(hub, "org/not-ours", COMMIT_MAIN, folders["main"], skip=("config.json",))
    return hub


@pytest.fixture
def offline_cache(cache, monkeypatch) -> Path:
    """huggingface_hub reads its environment once at import: point its constants at the test cache."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_the_test_cache_has_the_real_layout(cache):
    from huggingface_hub import scan_cache_dir
    info = scan_cache_dir(cache)
    assert not info.warnings
    tiny = next(r for r in info.repos if r.repo_id == "org/tiny")
    assert {frozenset(r.refs) for r in tiny.revisions} == {frozenset({"main"}), frozenset({"v1"})}
    main = next(r for r in tiny.revisions if "main" in r.refs)
    assert {f.file_name for f in main.files} >= {"config.json", "generator.safetensors", "redder.safetensors"}


def test_load_by_repo_id_offline_with_progress_messages(offline_cache):
    messages: list[str] = []
    model = editgan.load("org/tiny", device="cpu", progress=messages.append)
    assert model.config.name == "tiny" and list(model.presets) == ["redder"] and model.source == "org/tiny"
    assert model.sample(seed=0).image.shape == (32, 32, 3)
    assert all(isinstance(m, str) for m in messages)
    assert "HF_HUB_OFFLINE is set" in messages[0] and str(offline_cache) in messages[0]
    assert any(COMMIT_MAIN in m for m in messages) and messages[-1].startswith("loading the weights")


def test_revision_selects_a_branch_or_a_commit(offline_cache):
    assert EditGANModel.load("org/tiny", "cpu", revision="v1").config.name == "tiny-v1"
    assert EditGANModel.load("org/tiny", "cpu", revision=COMMIT_V1).config.name == "tiny-v1"
    assert EditGANModel.load("org/tiny", "cpu", revision=COMMIT_MAIN).config.name == "tiny"
    with pytest.raises(ModelLoadError, match=r"org/tiny@v9 is not in the Hugging Face cache .*HF_HUB_OFFLINE is set"):
        EditGANModel.load("org/tiny", "cpu", revision="v9")


def test_explicit_cache_dir(cache, tmp_path, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert EditGANModel.load("org/tiny", "cpu", cache_dir=cache).config.name == "tiny"
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        EditGANModel.load("org/tiny", "cpu")


def test_unknown_repo_corrupt_and_missing_files_give_clear_errors(offline_cache):
    with pytest.raises(ModelLoadError, match=r"org/nothing is not in the Hugging Face cache \(.*\) and "
                                             r"HF_HUB_OFFLINE is set: unset it to download"):
        editgan.load("org/nothing", device="cpu")
    with pytest.raises(ModelLoadError, match=r"generator\.safetensors is not a readable safetensors file "
                                             r"\(corrupt or truncated\?\)"):
        editgan.load("org/truncated", device="cpu")
    with pytest.raises(ModelLoadError, match=r"config\.json describes a segmenter but .* has no segmenter"):
        editgan.load("org/no-segmenter", device="cpu")
    with pytest.raises(ModelLoadError, match="has no config.json: it is not an EditGAN Studio model"):
        editgan.load("org/not-ours", device="cpu")


def test_hf_home_is_respected_in_a_fresh_process(cache):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")}
    env.update(HF_HOME=str(cache.parent), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    code = ("import editgan; m = editgan.load('org/tiny', device='cpu', revision='v1'); "
            "print(m.config.name, m.source)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tiny-v1", "org/tiny"]


def test_download_arguments_token_and_byte_progress(folders, monkeypatch):
    """The online path, with snapshot_download replaced: what is asked for, and bytes reported as messages."""
    import huggingface_hub
    from huggingface_hub import constants
    seen = {}

    def fake_snapshot_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        bars = kwargs["tqdm_class"]
        with bars(total=3, desc="Fetching 3 files") as files:
            bar = bars(total=2_000_000, initial=0, unit="B", unit_scale=True, desc="Downloading bytes",
                       name="huggingface_hub.snapshot_download")
            bar.update(1_500_000)
            bar.update(500_000)
            bar.close()
            files.update(3)
        return str(folders["v1"])

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    messages: list[str] = []
    model = EditGANModel.load("org/private-model", "cpu", revision="v1", token="hf_secret", progress=messages.append)
    assert model.config.name == "tiny-v1"
    assert seen["repo_id"] == "org/private-model" and seen["revision"] == "v1" and seen["token"] == "hf_secret"
    assert seen["allow_patterns"] == MODEL_FILES and seen["cache_dir"] is None
    assert messages[0].startswith("downloading org/private-model@v1 from the Hugging Face Hub")
    assert "org/private-model: Downloading bytes 2.0 MB of 2.0 MB" in messages
    assert "org/private-model: Fetching 3 files 3/3" in messages


def test_the_real_snapshot_download_accepts_our_arguments():
    from huggingface_hub import snapshot_download
    inspect.signature(snapshot_download).bind("org/x", revision="v1", allow_patterns=MODEL_FILES, token=None,
                                              cache_dir=None, tqdm_class=progress_bar_class(print, "org/x"))


def test_progress_bars_work_inside_huggingface_hubs_thread_map():
    thread_map = pytest.importorskip("huggingface_hub.utils.tqdm").__dict__.get("hf_thread_map")
    if thread_map is None:
        pytest.skip("this huggingface_hub has no hf_thread_map")
    messages: list[str] = []
    results = thread_map(lambda x: x * 2, [1, 2, 3], max_workers=2, desc="Fetching 3 files",
                         tqdm_class=progress_bar_class(messages.append, "org/x", min_interval=0.0))
    assert results == [2, 4, 6] and messages[-1] == "org/x: Fetching 3 files 3/3"


def test_hub_errors_become_model_load_errors(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    def raising(error_type):
        def fake(repo_id, **kwargs):
            error = error_type.__new__(error_type)  # the real constructors want an HTTP response
            Exception.__init__(error, "from the Hub")
            raise error
        return fake

    for error_type, message in [(GatedRepoError, "is gated"), (RepositoryNotFoundError, "or it is private"),
                                (RevisionNotFoundError, "has no revision 'nope'")]:
        monkeypatch.setattr(huggingface_hub, "snapshot_download", raising(error_type))
        with pytest.raises(ModelLoadError, match=message):
            editgan.load("org/x", device="cpu", revision="nope")


# -- model card and push ------------------------------------------------------------------------------------------
def test_save_pretrained_writes_a_card_and_keeps_an_existing_one(folders, tmp_path):
    model = EditGANModel.from_folder(folders["main"], device="cpu")
    out = model.save_pretrained(tmp_path / "copy")
    text = (out / "README.md").read_text()
    assert text.startswith("---\n") and "library_name: editgan-studio" in text
    assert "| 1 | reddish | `#ff0000` |" in text and "| redder | Redder | -2 … 2 | 1 | 5 |" in text
    (out / "README.md").write_text("my own card")
    model.save_pretrained(out)
    assert (out / "README.md").read_text() == "my own card"


def test_card_front_matter_parses_and_maps_licenses(folders):
    from huggingface_hub import ModelCard
    config = EditGANModel.from_folder(folders["main"], device="cpu").config
    card = ModelCard(render_model_card(config, repo_id="org/tiny"))
    assert card.data.license == "other" and card.data.license_name == "test"
    assert set(card.data.tags) >= {"editgan", "stylegan2", "semantic-segmentation"}
    assert 'editgan.load("org/tiny")' in card.text
    config.license = "MIT (weights trained from scratch)"
    assert ModelCard(render_model_card(config)).data.license == "mit"
    config.segmenter = None
    assert "Mask editing is not available" in render_model_card(config)


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: records calls, checks them against the real signatures, and lists what
    upload_folder would upload."""
    calls: list[tuple[str, dict]] = []

    def __init__(self, **kwargs):
        self._record("__init__", kwargs)

    def _record(self, name: str, kwargs: dict, *args) -> None:
        from huggingface_hub import HfApi
        inspect.signature(getattr(HfApi, name)).bind(self, *args, **kwargs)  # TypeError if the call is wrong
        FakeHfApi.calls.append((name, dict(kwargs, args=args)))

    def create_repo(self, *args, **kwargs):
        self._record("create_repo", kwargs, *args)
        return SimpleNamespace(repo_id=args[0] if args else kwargs["repo_id"])

    def create_branch(self, *args, **kwargs):
        self._record("create_branch", kwargs, *args)

    def upload_folder(self, *args, **kwargs):
        from huggingface_hub.utils import filter_repo_objects
        self._record("upload_folder", kwargs, *args)
        folder = Path(kwargs["folder_path"])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        FakeHfApi.calls.append(("uploaded", {"files": list(filter_repo_objects(
            files, allow_patterns=kwargs.get("allow_patterns"), ignore_patterns=kwargs.get("ignore_patterns")))}))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{'c' * 40}")


@pytest.fixture
def fake_api(monkeypatch):
    import huggingface_hub
    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_validates_writes_a_card_and_uploads_only_model_files(folders, tmp_path, fake_api):
    folder = tmp_path / "to-push"
    shutil.copytree(folders["main"], folder)
    (folder / "README.md").unlink()
    (folder / "generator_training.pt").write_bytes(b"pickle, not for the Hub")
    (folder / "notes.txt").write_text("local notes")
    messages: list[str] = []
    url = push(folder, "org/new-model", private=True, branch="dev", token="hf_secret", progress=messages.append)
    assert url == f"https://huggingface.co/org/new-model/commit/{'c' * 40}"
    calls = dict(fake_api.calls)
    assert calls["__init__"] == {"token": "hf_secret", "args": ()}
    assert calls["create_repo"]["private"] is True and calls["create_repo"]["exist_ok"] is True
    assert calls["create_repo"]["args"] == ("org/new-model",)
    assert calls["create_branch"]["branch"] == "dev" and calls["create_branch"]["exist_ok"] is True
    assert calls["upload_folder"]["revision"] == "dev" and calls["upload_folder"]["repo_id"] == "org/new-model"
    assert calls["uploaded"]["files"] == ["README.md", "config.json", "generator.safetensors",
                                          "segmenter.safetensors", "vectors/redder.safetensors"]
    assert 'editgan.load("org/new-model")' in (folder / "README.md").read_text()
    assert any("wrote a model card" in m for m in messages)


def test_push_keeps_the_card_and_main_needs_no_branch(folders, tmp_path, fake_api):
    folder = tmp_path / "to-push"
    shutil.copytree(folders["main"], folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# mine\n")
    push(folder, "org/model")
    names = [name for name, _ in fake_api.calls]
    assert "create_branch" not in names and dict(fake_api.calls)["create_repo"]["private"] is False
    assert (folder / "README.md").read_text() == "---\nlicense: mit\n---\n# mine\n"


def test_push_command_line_and_refusals(folders, tmp_path, fake_api, capsys):
    folder = tmp_path / "cli-push"
    shutil.copytree(folders["main"], folder)
    code = cli_main(["push", str(folder), "org/cli-model", "--private", "--revision", "v2", "--token", "hf_t"])
    assert code == 0 and "uploaded: https://huggingface.co/org/cli-model/commit/" in capsys.readouterr().out
    assert dict(fake_api.calls)["create_branch"]["branch"] == "v2"

    fake_api.calls = []
    (folder / "generator.safetensors").write_bytes(b"broken")
    code = cli_main(["push", str(folder), "org/cli-model"])
    assert code == 2 and "generator.safetensors is not a readable safetensors" in capsys.readouterr().err
    assert fake_api.calls == []  # nothing reached the Hub
    with pytest.raises(PushError, match="not a Hub repo id"):
        push(folder, "no-slash")


def test_encoder_type_picks_the_class(folders, tmp_path):
    """config.json's encoder "type": "conv" is our LatentEncoder (as before), "fpn" EditGAN's; others are refused."""
    from editgan.networks.encoder import EncoderConfig, LatentEncoder
    model = EditGANModel.from_folder(folders["main"], device="cpu")
    model.config.encoder = EncoderConfig(SIZE, model.n_latent, STYLE_DIM, channels=[4, 4, 4])
    model.encoder = LatentEncoder(model.config.encoder)
    folder = model.save_pretrained(tmp_path / "with-encoder")
    assert isinstance(EditGANModel.from_folder(folder).encoder, LatentEncoder)
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["type"] = "transformer"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="encoder of unknown type 'transformer'"):
        EditGANModel.from_folder(folder)
