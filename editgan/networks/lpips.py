"""LPIPS v0.1 with a VGG16 trunk, in plain PyTorch, and a pixel-loss fallback.

The editor keeps the image outside the edited region close to the original with a perceptual distance
(EditGAN uses ``10·LPIPS + 5·MSE``). This module gives it that distance:

* :class:`VGG16Features` - the 13 convolutions of VGG16 with the state-dict keys of timm's ``vgg16.tv_in1k``
  (``features.0.*`` ... ``features.28.*``); returns the five LPIPS taps relu1_2 ... relu5_3.
* :class:`LPIPS` - the LPIPS v0.1 distance: scaling layer, unit-normalise each tap over channels, squared
  difference, non-negative 1×1 heads, spatial mean, sum over taps. Inputs are in [-1, 1]; output is (N,).
* :func:`load_lpips` - builds it from the Hugging Face Hub (normal HF cache, ``HF_HOME``, ``HF_HUB_OFFLINE``, token).
* :func:`perceptual_loss` - what the app calls: LPIPS when its weights can be had, otherwise :class:`PixelMSELoss`
  with one warning per process. Both satisfy the :class:`PerceptualLoss` protocol.

Masks: ``mask`` is (N, 1, H, W) (or (1, 1, H, W)) in [0, 1], 1 = compare this pixel, 0 = ignore it (the edit
region). As EditGAN does, the mask is applied to *both* images before the network: masked-out pixels become black
(-1), the value EditGAN's ``image_in_[0,1] * (1 - ROI)`` gives. Simple and differentiable, but not exact: the
network's receptive field still sees the black hole's border, so pixels right next to the region count a little.

Many candidates against one original: :meth:`LPIPS.precompute_target` runs the trunk on the original once; pass the
returned :class:`PreparedTarget` as ``y``. The mask is part of the prepared target.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, Union, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

# --- Where the weights come from -------------------------------------------------------------------------------
# Backbone: timm's copy of torchvision's ImageNet VGG16 (IMAGENET1K_V1, the trunk the LPIPS reference uses), as
# safetensors. timm keeps torchvision's `features.N.*` names; the classifier is renamed `pre_logits.fc1/fc2` and
# `head.fc` (timm/models/vgg.py, `_filter_fn`), which we ignore.
BACKBONE_REPO = "timm/vgg16.tv_in1k"
BACKBONE_FILENAME = "model.safetensors"
# Heads: the LPIPS v0.1 vgg linear layers (richzhang/PerceptualSimilarity `lpips/weights/v0.1/vgg.pth`) converted
# to safetensors by Ming Yang ("vivym"): keys `0.weight` ... `4.weight` = reference `lin{i}.model.1.weight`,
# shape [1, C, 1, 1]. Used by vivym/OmniAE (omni_ae/models/lpips.py, `lpips_model_name_or_path="vivym/lpips"`).
HEADS_REPO = "vivym/lpips"
HEADS_FILENAME = "vgg_lpips_linear.safetensors"
# The same weights as the original pickle (7,289 bytes, sha256 a78928a0...), for when the safetensors copy goes
# away: pass heads_repo=ALT_HEADS_REPO, heads_filename=ALT_HEADS_FILENAME (read with torch.load(weights_only=True)).
ALT_HEADS_REPO = "chaofengc/IQA-PyTorch-Weights"
ALT_HEADS_FILENAME = "LPIPS_v0.1_vgg-a78928a0.pth"

# --- LPIPS v0.1 constants (richzhang/PerceptualSimilarity, lpips/lpips.py and lpips/__init__.py) -----------------
SCALING_SHIFT = (-0.030, -0.088, -0.188)
SCALING_SCALE = (0.458, 0.448, 0.450)
NORMALIZE_EPS = 1e-10  # added to the channel norm, not under the square root
TAP_CHANNELS = (64, 128, 256, 512, 512)
TAP_NAMES = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

# VGG16 configuration "D" without the last max pool (relu5_3 is taken before it). Built in this order, the module
# indices match torchvision/timm: convs at 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28.
_VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
)
TAP_LAYERS = (3, 8, 15, 22, 29)  # indices in `features` of the ReLUs LPIPS reads
MIN_SIZE = 16  # four 2x2 pools before relu5_3: smaller inputs leave it empty

LPIPS_NAME = "lpips-vgg16-v0.1"
PIXEL_NAME = "pixel-mse"

# Key layouts a heads file may use; each maps the file's key to the tap index.
_HEAD_LAYOUTS: dict[str, dict[str, int]] = {
    "vivym/lpips safetensors": {f"{i}.weight": i for i in range(5)},
    "LPIPS reference .pth": {f"lin{i}.model.1.weight": i for i in range(5)},
}
_BACKBONE_IGNORED_PREFIXES = ("pre_logits.", "head.")


class LPIPSWeightsError(RuntimeError):
    """The LPIPS weights could not be had: download failed, or a file is unreadable or does not fit."""


# --- The interface the editing code depends on -----------------------------------------------------------------
@dataclass(frozen=True)
class PreparedTarget:
    """A fixed target image, masked, with whatever the loss precomputed from it (LPIPS: normalised taps)."""

    image: Tensor  # (N or 1, 3, H, W), already masked
    mask: Tensor | None  # the mask it was prepared with; candidates are masked the same way
    features: tuple[Tensor, ...]  # empty for losses that need none
    prepared_by: str  # the loss `name` that made it


Target = Union[Tensor, PreparedTarget]


@runtime_checkable
class PerceptualLoss(Protocol):
    """A distance between image batches in [-1, 1], one value per image. LPIPS and its pixel fallback both fit."""

    name: str

    def __call__(self, x: Tensor, y: Target, mask: Tensor | None = None) -> Tensor:
        """(N,) distances between ``x`` and ``y`` (a tensor or a :class:`PreparedTarget`), outside ``mask == 0``."""
        ...

    def precompute_target(self, target: Tensor, mask: Tensor | None = None) -> PreparedTarget:
        """Do the target-only work once, for a loop that compares many candidates with one target."""
        ...


# --- Pure helpers ------------------------------------------------------------------------------------------------
def apply_mask(image: Tensor, mask: Tensor | None) -> Tensor:
    """Blend masked-out pixels (mask 0) to black (-1), like EditGAN's ``[0,1]-image * (1 - ROI)``."""
    if mask is None:
        return image
    return image * mask + (mask - 1.0)


def normalize_channels(feature: Tensor, eps: float = NORMALIZE_EPS) -> Tensor:
    """Unit-normalise each spatial position's feature vector, as the reference ``normalize_tensor``."""
    return feature / (feature.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def lpips_from_normalized(
    feats_x: Sequence[Tensor], feats_y: Sequence[Tensor], head_weights: Sequence[Tensor]
) -> Tensor:
    """LPIPS from already normalised taps: per tap, heads over channels of the squared difference, spatial mean;
    then the sum over taps. Batches of 1 broadcast against N. Returns (N,)."""
    total: Tensor | None = None
    for fx, fy, w in zip(feats_x, feats_y, head_weights, strict=True):
        per_pixel = F.conv2d((fx - fy).pow(2), w)  # (N, 1, h, w): the 1x1 head
        per_tap = per_pixel.mean(dim=(1, 2, 3))
        total = per_tap if total is None else total + per_tap
    assert total is not None
    return total


def _check_images(x: Tensor, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} must be (N, 3, H, W), got {tuple(x.shape)}")


def _check_mask(mask: Tensor, image: Tensor) -> None:
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"mask must be (N, 1, H, W) with the image's H, W {tuple(image.shape[-2:])}, got {tuple(mask.shape)}"
        )
    if mask.shape[0] not in (1, image.shape[0]) and image.shape[0] != 1:
        raise ValueError(f"mask batch {mask.shape[0]} does not fit image batch {image.shape[0]}")


def _checked_mask(mask: Tensor | None, image: Tensor) -> Tensor | None:
    """The mask, validated against ``image`` and cast to its dtype (None stays None)."""
    if mask is None:
        return None
    _check_mask(mask, image)
    return mask.to(image.dtype)


def _resolve_target(loss_name: str, y: Target, mask: Tensor | None) -> tuple[PreparedTarget | None, Tensor | None]:
    """For a prepared target the mask is fixed at preparation: allow None or that same mask, nothing else."""
    if not isinstance(y, PreparedTarget):
        return None, mask
    if y.prepared_by != loss_name:
        raise ValueError(f"target was prepared by {y.prepared_by!r}, not by this {loss_name!r} loss")
    if mask is not None and not (
        mask is y.mask or (y.mask is not None and mask.shape == y.mask.shape and torch.equal(mask, y.mask))
    ):
        raise ValueError("a prepared target carries its own mask: pass mask=None (or that same mask)")
    return y, y.mask


# --- Networks ----------------------------------------------------------------------------------------------------
class VGG16Features(nn.Module):
    """VGG16's convolutional trunk up to relu5_3, with torchvision/timm key names (``features.N.weight/bias``)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The five LPIPS taps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of an already scaled input."""
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAP_LAYERS:
                taps.append(x)
        return taps


class LPIPS(nn.Module):
    """Learned perceptual distance (LPIPS v0.1, VGG16). Frozen: no parameter needs grad; the input does get it."""

    name = LPIPS_NAME

    def __init__(self) -> None:
        super().__init__()
        self.net = VGG16Features()
        # Reference names lin0..lin4 (there: `lin{i}.model.1`, a conv after a dropout we do not need at inference).
        for i, channels in enumerate(TAP_CHANNELS):
            self.add_module(f"lin{i}", nn.Conv2d(channels, 1, kernel_size=1, bias=False))
        # Constants, not weights: kept out of the state dict.
        self.register_buffer("shift", torch.tensor(SCALING_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALING_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LPIPS":
        """Always eval: a metric, never trained here."""
        return super().train(False)

    @property
    def heads(self) -> list[nn.Conv2d]:
        return [getattr(self, f"lin{i}") for i in range(len(TAP_CHANNELS))]

    def normalized_features(self, images: Tensor) -> list[Tensor]:
        """Scaling layer, trunk, unit-normalised taps, for images in [-1, 1]."""
        _check_images(images, "images")
        if min(images.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS-VGG needs images of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(images.shape)}")
        scaled = (images - self.shift) / self.scale
        return [normalize_channels(tap) for tap in self.net(scaled)]

    @torch.no_grad()
    def precompute_target(self, target: Tensor, mask: Tensor | None = None) -> PreparedTarget:
        """Mask the target and compute its normalised taps once (no grad: the target is a constant)."""
        _check_images(target, "target")
        mask = _checked_mask(mask, target)
        image = apply_mask(target, mask)
        return PreparedTarget(image, mask, tuple(self.normalized_features(image)), self.name)

    def forward(self, x: Tensor, y: Target, mask: Tensor | None = None) -> Tensor:
        """(N,) LPIPS distances between ``x`` and ``y``, both masked by ``mask`` (1 = compare) when given."""
        _check_images(x, "x")
        prepared, mask = _resolve_target(self.name, y, mask)
        mask = _checked_mask(mask, x)
        feats_x = self.normalized_features(apply_mask(x, mask))
        if prepared is not None:
            feats_y = list(prepared.features)
        else:
            assert isinstance(y, Tensor)
            _check_images(y, "y")
            feats_y = self.normalized_features(apply_mask(y, mask))
        return lpips_from_normalized(feats_x, feats_y, [head.weight for head in self.heads])


class PixelMSELoss:
    """The fallback: mean squared difference over channels and pixels (in the [-1, 1] units of the inputs).

    With a mask, both images are masked first and the mean still runs over *all* pixels, as EditGAN's MSE does.
    """

    name = PIXEL_NAME

    def precompute_target(self, target: Tensor, mask: Tensor | None = None) -> PreparedTarget:
        _check_images(target, "target")
        mask = _checked_mask(mask, target)
        return PreparedTarget(apply_mask(target.detach(), mask), mask, (), self.name)

    def __call__(self, x: Tensor, y: Target, mask: Tensor | None = None) -> Tensor:
        _check_images(x, "x")
        prepared, mask = _resolve_target(self.name, y, mask)
        mask = _checked_mask(mask, x)
        if prepared is not None:
            y_image = prepared.image
        else:
            assert isinstance(y, Tensor)
            _check_images(y, "y")
            y_image = apply_mask(y, mask)
        return (apply_mask(x, mask) - y_image).pow(2).mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return "PixelMSELoss()"


# --- Weights: reading files and mapping keys ----------------------------------------------------------------------
def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise LPIPSWeightsError(f"{path.name} is not a readable safetensors file ({path}): {e}") from e


def _read_torch_pickle(path: Path) -> dict[str, Tensor]:
    """A reference-style .pth, read with weights_only=True (tensors and plain containers only, no code)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError...)
        raise LPIPSWeightsError(f"{path.name} is not a readable torch weights file ({path}): {e}") from e
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise LPIPSWeightsError(f"{path.name} does not hold a flat dict of tensors ({path})")
    return dict(state)


def _read_weights(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix in (".pth", ".pt", ".bin"):
        return _read_torch_pickle(path)
    raise LPIPSWeightsError(f"unknown weights format for {path.name}: expected .safetensors or .pth")


def _key_problem(source: str, missing: Sequence[str], unexpected: Sequence[str]) -> LPIPSWeightsError:
    parts = []
    if missing:
        parts.append(f"missing keys {sorted(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {sorted(unexpected)}")
    return LPIPSWeightsError(f"{source}: " + "; ".join(parts))


def _copy_checked(source: str, key: str, param: Tensor, value: Tensor) -> None:
    if tuple(value.shape) != tuple(param.shape):
        raise LPIPSWeightsError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value.to(param.dtype))


def load_backbone_state(net: VGG16Features, state: Mapping[str, Tensor], source: str = "backbone") -> None:
    """Copy timm ``vgg16`` weights into ``net``: all ``features.*`` keys required, ``pre_logits.*``/``head.*``
    ignored, anything else an error."""
    own = net.state_dict()
    relevant = {k: v for k, v in state.items() if not k.startswith(_BACKBONE_IGNORED_PREFIXES)}
    missing = [k for k in own if k not in relevant]
    unexpected = [k for k in relevant if k not in own]
    if missing or unexpected:
        raise _key_problem(source, missing, unexpected)
    params = dict(net.named_parameters())
    for key, value in relevant.items():
        _copy_checked(source, key, params[key], value)


def load_heads_state(model: LPIPS, state: Mapping[str, Tensor], source: str = "heads") -> None:
    """Copy the five linear heads from either known key layout (``{i}.weight`` or ``lin{i}.model.1.weight``)."""
    keys = set(state)
    # Pick the layout the file matches best, so the error names the keys against the right expectation.
    layout_name, layout = max(_HEAD_LAYOUTS.items(), key=lambda item: len(keys & set(item[1])))
    missing = sorted(set(layout) - keys)
    unexpected = sorted(keys - set(layout))
    if missing or unexpected:
        raise _key_problem(f"{source} (read as {layout_name} layout)", missing, unexpected)
    heads = model.heads
    for key, index in layout.items():
        value = state[key]
        if torch.any(value < 0):
            raise LPIPSWeightsError(f"{source}: {key} has negative weights; LPIPS heads are non-negative")
        _copy_checked(source, key, heads[index].weight, value)


def lpips_from_files(backbone_path: str | Path, heads_path: str | Path, device: str | torch.device = "cpu") -> LPIPS:
    """Build :class:`LPIPS` from local files (backbone: safetensors; heads: safetensors or reference .pth)."""
    backbone_path, heads_path = Path(backbone_path), Path(heads_path)
    if backbone_path.suffix != ".safetensors":
        raise LPIPSWeightsError(f"backbone weights must be safetensors, got {backbone_path.name}")
    model = LPIPS()
    load_backbone_state(model.net, _read_safetensors(backbone_path), source=backbone_path.name)
    load_heads_state(model, _read_weights(heads_path), source=heads_path.name)
    return model.to(device)


# --- Hub loading -------------------------------------------------------------------------------------------------
def _hub_errors() -> tuple[type[BaseException], ...]:
    """What a failed download raises: hub HTTP/cache errors are OSError; bad ids ValueError; raw httpx errors."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:  # older huggingface_hub uses requests, whose errors are OSError
        pass
    return tuple(errors)


def _download(repo_id: str, filename: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
    except _hub_errors() as e:
        at = f"@{revision}" if revision else ""
        raise LPIPSWeightsError(f"could not get {repo_id}/{filename}{at} from the Hub or its cache: "
                                f"{type(e).__name__}: {e}") from e


def load_lpips(
    device: str | torch.device = "cpu",
    backbone_repo: str = BACKBONE_REPO,
    heads_repo: str = HEADS_REPO,
    heads_filename: str = HEADS_FILENAME,
    revision: str | None = None,
    *,
    backbone_filename: str = BACKBONE_FILENAME,
) -> LPIPS:
    """Download (or find in the HF cache) the VGG16 trunk and the LPIPS heads and build a frozen :class:`LPIPS`.

    ``revision`` (branch, tag or commit) is used for both repos; None means their default branch. Honours the usual
    huggingface_hub settings (``HF_HOME``/``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, token). Raises
    :class:`LPIPSWeightsError` naming the file and the problem.
    """
    backbone_path = _download(backbone_repo, backbone_filename, revision)
    heads_path = _download(heads_repo, heads_filename, revision)
    return lpips_from_files(backbone_path, heads_path, device)


# --- What the app calls ------------------------------------------------------------------------------------------
_cache: dict[tuple[str, ...], PerceptualLoss] = {}
_cache_lock = threading.Lock()
_fallback_warned = False


def perceptual_loss(
    device: str | torch.device = "cpu",
    backbone_repo: str = BACKBONE_REPO,
    heads_repo: str = HEADS_REPO,
    heads_filename: str = HEADS_FILENAME,
    revision: str | None = None,
) -> PerceptualLoss:
    """LPIPS on ``device``, loaded once per process and device; a :class:`PixelMSELoss` when it cannot be loaded.

    The first fallback in a process logs one warning that says what failed; later ones are silent.
    """
    global _fallback_warned
    key = (str(torch.device(device)), backbone_repo, heads_repo, heads_filename, revision or "")
    with _cache_lock:  # app callbacks run in threads: load once
        if key in _cache:
            return _cache[key]
        loss: PerceptualLoss
        try:
            loss = load_lpips(device, backbone_repo, heads_repo, heads_filename, revision)
        except LPIPSWeightsError as e:
            if not _fallback_warned:
                log.warning("LPIPS perceptual loss unavailable (%s); using a pixel loss (%s) instead.", e, PIXEL_NAME)
                _fallback_warned = True
            loss = PixelMSELoss()
        _cache[key] = loss
        return loss


def clear_perceptual_loss_cache() -> None:
    """Forget loaded losses and the "already warned" flag, as in a fresh process (tests; after fixing the cache)."""
    global _fallback_warned
    with _cache_lock:
        _cache.clear()
        _fallback_warned = False
