"""NVIDIA StyleGAN2-ADA network pickles → an EditGAN Studio generator, read as data: none of the file's code runs.

    python -m editgan convert nvidia --checkpoint ffhq.pkl --out models/ffhq --license "..."

A network pickle from NVIDIA's stylegan2-ada-pytorch (``ffhq.pkl``, ``network-snapshot-*.pkl``) is a dict of
networks (``G``, ``D``, ``G_ema``, …) whose unpickling would run source code carried in the file.
:func:`~editgan.modelio.convert.nvidia_pickle.read_pickle` reads it as data instead (see that module), each network
a :class:`~editgan.modelio.convert.nvidia_pickle.NetworkRecord`: its class name and saved state.

``G_ema`` is then checked against NVIDIA's StyleGAN2 generator (``training/networks.py``: 'skip' synthesis, 3×3
modulated convolutions, the [1, 3, 3, 1] resampling filter, leaky-ReLU mapping) and mapped key by key onto our
rosinality-layout :class:`~editgan.networks.stylegan2.Generator`:

    NVIDIA (``G_ema.state_dict()`` names)           ours
    mapping.fc{i}.weight / .bias                    style.{i+1}.weight / .bias
    mapping.w_avg                                   latent_avg (stored_mean_latent: the truncation centre)
    synthesis.b4.const (C, 4, 4)                    input.input (1, C, 4, 4)
    synthesis.b4.conv1                              conv1 (its noise: noises.noise_0)
    synthesis.b{r}.conv0 / .conv1, r = 2^(k+3)      convs.{2k} / convs.{2k+1} (noises.noise_{2k+1} / _{2k+2})
    synthesis.b4.torgb, synthesis.b{r}.torgb        to_rgb1, to_rgbs.{k}
    <layer>.weight (O, I, k, k)                     <layer>.conv.weight (1, O, I, k, k)
    <layer>.affine.weight / .bias                   <layer>.conv.modulation.weight / .bias
    <layer>.bias                                    <layer>.activate.bias (ToRGB: <layer>.bias, as (1, 3, 1, 1))
    <layer>.noise_strength (), .noise_const (r, r)  <layer>.noise.weight (1,), noises.noise_n (1, 1, r, r)
    resample_filter buffers                         checked to be [1, 3, 3, 1]; ours are built in

Why the weights copy unchanged: both codes store raw weights and apply the gains in forward. Mapping layers:
NVIDIA multiplies the weight by lr/√fan_in and the bias by lr, as rosinality's ``EqualLinear(lr_mul=lr)`` does (lr
is read from the pickle). Affine layers: 1/√w_dim and bias gain 1, ``EqualLinear`` with lr_mul 1 (their bias, which
starts at 1, is stored as trained). ToRGB: NVIDIA scales the styles by 1/√fan_in, we scale the weight, the same
product. Synthesis convolutions: NVIDIA applies no gain, since demodulation divides it out; ours scale by
1/√fan_in first, which moves only the 1e-8 in the demodulation's denominator (for styles of unit scale, a relative
change of about 1e-8).
Noise is added after demodulation and before the bias in both; ``conv_clamp`` is our optional generator setting.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from editgan.errors import NvidiaPickleError
from editgan.modelio.checkpoint import ModelParts, write_new_model
from editgan.modelio.config import GeneratorConfig, ModelConfig
from editgan.modelio.convert.common import begin_conversion, check_keys, file_record
from editgan.modelio.convert.nvidia_pickle import NetworkRecord, TensorFlowNetwork, TorchModuleRecord, read_pickle
from editgan.modelio.model_card import NO_SEGMENTER_NOTE
from editgan.networks.stylegan2 import Generator, make_blur_kernel

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
STANDARD_FILTER = (1, 3, 3, 1)
# NVIDIA's LSUN car (config-f) is a 512×512 canvas whose picture is 512 wide and 384 high, in rows 64..448.
CAR_CONFIG_F_BOX = (64, 0, 384, 512)


# -- recognising what the pickle holds ---------------------------------------------------------------------------
def find_g_ema(data: Any, path: Path) -> NetworkRecord:
    """The ``G_ema`` record of a loaded pickle, or a refusal naming what was found instead."""
    if isinstance(data, TensorFlowNetwork) or (isinstance(data, tuple) and data and
                                               any(isinstance(x, TensorFlowNetwork) for x in data)):
        net = data if isinstance(data, TensorFlowNetwork) else next(x for x in data if isinstance(x, TensorFlowNetwork))
        raise NvidiaPickleError(f"{path}: {_describe_tensorflow(net)}")
    if not isinstance(data, dict):
        raise NvidiaPickleError(f"{path}: not an NVIDIA network pickle (it holds a {type(data).__name__}, not a dict "
                                f"with 'G_ema')")
    if "G_ema" not in data:
        keys = ", ".join(sorted(map(str, data))[:8]) or "nothing"
        raise NvidiaPickleError(f"{path}: no 'G_ema' generator in this pickle (found {keys})")
    g = data["G_ema"]
    if isinstance(g, TensorFlowNetwork):
        raise NvidiaPickleError(f"{path}: {_describe_tensorflow(g)}")
    if not isinstance(g, NetworkRecord):
        raise NvidiaPickleError(f"{path}: 'G_ema' is a {type(g).__name__}, not a network")
    return g


def _describe_tensorflow(net: TensorFlowNetwork) -> str:
    func = str(net.state.get("build_func_name", "?"))
    found = f"dnnlib.tflib Network {net.state.get('name', '?')!r}, built by {func}"
    if func == "G_style":
        return (f"a TensorFlow pickle of StyleGAN (1) ({found}): StyleGAN1's generator is another architecture, which "
                f"EditGAN Studio does not run")
    kind = "StyleGAN2 / StyleGAN2-ADA" if func == "G_main" else "a TensorFlow network"
    return (f"a TensorFlow pickle of {kind} ({found}); only stylegan2-ada-pytorch's PyTorch pickles are read: "
            f"re-save it as one with NVIDIA's legacy.py where you trust that code, then convert the result")


def _first_names(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", …" if len(names) > n else "")


def _refuse_other_architectures(g: NetworkRecord, path: Path) -> None:
    """StyleGAN-XL, StyleGAN3, conditional generators and unexpected classes, each named."""
    if g.class_name != "Generator":
        raise NvidiaPickleError(f"{path}: 'G_ema' is a {g.class_name}, not a StyleGAN2 Generator")
    mapping, synthesis = g.child("mapping"), g.child("synthesis")
    if not isinstance(mapping, NetworkRecord) or not isinstance(synthesis, NetworkRecord):
        raise NvidiaPickleError(f"{path}: 'G_ema' has no mapping and synthesis networks (children: "
                                f"{_first_names(sorted(g.children())) or 'none'})")
    sources = (g.module_src, mapping.module_src, synthesis.module_src)
    if any("StyleGAN-XL" in s for s in sources) or mapping.child("embed_proj") is not None:
        raise NvidiaPickleError(f"{path}: a StyleGAN-XL generator ({mapping.class_name} with a class embedding, "
                                f"StyleGAN3-style synthesis); only StyleGAN2(-ADA) generators are converted")
    names = sorted(synthesis.children())
    sg3 = [n for n in names if n == "input" or re.fullmatch(r"L\d+_\d+_\d+", n)]
    if sg3:
        raise NvidiaPickleError(f"{path}: a StyleGAN3 generator (synthesis.{', synthesis.'.join(sg3[:2])}, …); only "
                                f"StyleGAN2(-ADA) generators are converted")
    c_dim = _int_attr(g, "c_dim", 0)
    if c_dim > 0 or mapping.child("embed") is not None:
        raise NvidiaPickleError(f"{path}: a conditional generator (c_dim = {c_dim}): its pictures depend on a class "
                                f"label, which EditGAN Studio does not take")
    z_dim, w_dim = _int_attr(g, "z_dim", -1), _int_attr(g, "w_dim", -1)
    if z_dim != w_dim:
        raise NvidiaPickleError(f"{path}: z_dim {z_dim} differs from w_dim {w_dim}; our generator maps z to w at one "
                                f"width")
    if _int_attr(g, "img_channels", 3) != 3:
        raise NvidiaPickleError(f"{path}: a generator of {g.attr('img_channels')} colour channels (only RGB)")


def _params(record: Any, kind: str = "_parameters") -> dict:
    """A record's ``_parameters`` (or ``_buffers``) dict; empty when the pickle holds something else there."""
    value = record.state.get(kind) if isinstance(getattr(record, "state", None), dict) else None
    return value if isinstance(value, dict) else {}


def _int_attr(record: NetworkRecord, name: str, default: int) -> int:
    value = record.attr(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def network_tensors(record: Any, path: Path, prefix: str = "") -> StateDict:
    """Every parameter and buffer under ``record`` with its ``state_dict()`` name (``mapping.fc0.weight``, …)."""
    out: StateDict = {}
    for kind in ("_parameters", "_buffers"):
        for name, value in _params(record, kind).items():
            if value is None:
                continue
            if not torch.is_tensor(value):
                raise NvidiaPickleError(f"{path}: {prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + str(name)] = value
    for name, child in record.children().items():
        if isinstance(child, (NetworkRecord, TorchModuleRecord)):
            out |= network_tensors(child, path, f"{prefix}{name}.")
    return out


# -- the architecture, read and checked -------------------------------------------------------------------------------
@dataclass
class NvidiaArchitecture:
    """What our Generator needs to know about an NVIDIA StyleGAN2 ``G_ema``, read from its records."""
    resolution: int
    w_dim: int
    mapping_layers: int
    lr_multiplier: float
    channels: dict[int, int]
    conv_clamp: float | None
    has_w_avg: bool
    original: dict = field(default_factory=dict)
    """The constructor's settings as the pickle recorded them (for the model card)."""

    @property
    def resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, self.resolution.bit_length())]

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(size=self.resolution, style_dim=self.w_dim, n_mlp=self.mapping_layers,
                               channels=dict(self.channels), blur_kernel=STANDARD_FILTER, lr_mlp=self.lr_multiplier,
                               conv_clamp=self.conv_clamp, stored_mean_latent=self.has_w_avg)


def read_architecture(g: NetworkRecord, path: Path) -> NvidiaArchitecture:
    """Check that ``G_ema`` is a StyleGAN2 generator our Generator computes exactly, and read its settings."""
    _refuse_other_architectures(g, path)
    mapping, synthesis = g.child("mapping"), g.child("synthesis")
    resolution = _int_attr(g, "img_resolution", _int_attr(synthesis, "img_resolution", 0))
    if resolution < 4 or resolution & (resolution - 1):
        raise NvidiaPickleError(f"{path}: image resolution {resolution} is not a power of two ≥ 4")
    w_dim = _int_attr(g, "w_dim", 0)
    lr = _read_mapping(mapping, w_dim, path)
    channels: dict[int, int] = {}
    clamps: set = set()
    resolutions = [2 ** i for i in range(2, resolution.bit_length())]
    for res in resolutions:
        block = synthesis.child(f"b{res}")
        if not isinstance(block, NetworkRecord):
            raise NvidiaPickleError(f"{path}: synthesis has no block b{res} for a {resolution}-px generator")
        channels[res] = _check_block(block, res, w_dim, path, clamps)
    if len(clamps) > 1:
        raise NvidiaPickleError(f"{path}: layers clamp at different values {sorted(map(str, clamps))}; one conv_clamp "
                                f"for all layers is supported")
    clamp = clamps.pop() if clamps else None
    if clamp is not None and not (isinstance(clamp, (int, float, np.number)) and float(clamp) > 0):
        raise NvidiaPickleError(f"{path}: conv_clamp {clamp!r} is not a positive number")
    n_layers = sum(1 for n in mapping.children() if re.fullmatch(r"fc\d+", n))
    return NvidiaArchitecture(resolution, w_dim, n_layers, lr, channels, None if clamp is None else float(clamp),
                              "w_avg" in _params(mapping, "_buffers"), _original_settings(g, mapping))


def _fc_gains(layer: Any, key: str, path: Path) -> tuple[float, float, str]:
    """A FullyConnectedLayer's (weight_gain, bias_gain, activation), from its saved attributes."""
    if not isinstance(layer, NetworkRecord):
        raise NvidiaPickleError(f"{path}: {key} is missing or not a FullyConnectedLayer")
    weight = _params(layer).get("weight")
    if not torch.is_tensor(weight) or weight.ndim != 2:
        raise NvidiaPickleError(f"{path}: {key}.weight is missing or not a matrix")
    try:
        gain = float(layer.attr("weight_gain", 1 / math.sqrt(weight.shape[1])))
        bias_gain = float(layer.attr("bias_gain", 1.0))
    except (TypeError, ValueError):
        raise NvidiaPickleError(f"{path}: {key} has unreadable gains") from None
    return gain, bias_gain, str(layer.attr("activation", "linear"))


def _read_mapping(mapping: NetworkRecord, w_dim: int, path: Path) -> float:
    """Check the mapping layers (w_dim → w_dim, leaky ReLU, one lr multiplier) and return the multiplier."""
    names = sorted((n for n in mapping.children() if re.fullmatch(r"fc\d+", n)), key=lambda n: int(n[2:]))
    if not names or names != [f"fc{i}" for i in range(len(names))]:
        raise NvidiaPickleError(f"{path}: mapping layers are {_first_names(names) or 'missing'}; expected fc0, "
                                f"fc1, …")
    multipliers = set()
    for name in names:
        layer = mapping.child(name)
        gain, bias_gain, activation = _fc_gains(layer, f"mapping.{name}", path)
        shape = tuple(_params(layer)["weight"].shape)
        if shape != (w_dim, w_dim):
            raise NvidiaPickleError(f"{path}: mapping.{name}.weight is {shape}; only mapping layers of w_dim × w_dim "
                                    f"({w_dim}) are supported")
        if activation != "lrelu":
            raise NvidiaPickleError(f"{path}: mapping.{name} uses activation {activation!r} (only 'lrelu')")
        if not math.isclose(gain, bias_gain / math.sqrt(w_dim), rel_tol=1e-4):
            raise NvidiaPickleError(f"{path}: mapping.{name} has weight gain {gain:g} and bias gain {bias_gain:g}, "
                                    f"which is not an equalized-lr layer")
        multipliers.add(round(bias_gain, 9))
    if len(multipliers) != 1:
        raise NvidiaPickleError(f"{path}: mapping layers use different lr multipliers {sorted(multipliers)}")
    return float(multipliers.pop())


def _check_block(block: NetworkRecord, res: int, w_dim: int, path: Path, clamps: set) -> int:
    """Check one SynthesisBlock ('skip', standard layers) and return its width; collects the layers' clamps."""
    where = f"synthesis.b{res}"
    architecture = block.attr("architecture", "skip")
    if architecture != "skip":
        raise NvidiaPickleError(f"{path}: {where} uses the {architecture!r} architecture (only 'skip', StyleGAN2's "
                                f"default for generators)")
    layers = ["conv1", "torgb"] if res == 4 else ["conv0", "conv1", "torgb"]
    unknown = sorted(set(block.children()) - set(layers))
    if unknown:
        raise NvidiaPickleError(f"{path}: {where} has unexpected layers {_first_names(unknown)}")
    for name in layers:
        layer = block.child(name)
        key = f"{where}.{name}"
        if not isinstance(layer, NetworkRecord):
            raise NvidiaPickleError(f"{path}: {key} is missing")
        weight = _params(layer).get("weight")
        kernel = 1 if name == "torgb" else 3
        if not torch.is_tensor(weight) or weight.ndim != 4 or tuple(weight.shape[2:]) != (kernel, kernel) or \
                weight.numel() == 0:
            shape = tuple(weight.shape) if torch.is_tensor(weight) else None
            raise NvidiaPickleError(f"{path}: {key}.weight has shape {shape}, expected a non-empty {kernel}×{kernel} "
                                    f"kernel")
        gain, bias_gain, activation = _fc_gains(layer.child("affine"), f"{key}.affine", path)
        if not math.isclose(gain, 1 / math.sqrt(w_dim), rel_tol=1e-4) or bias_gain != 1 or activation != "linear":
            raise NvidiaPickleError(f"{path}: {key}.affine is not a plain affine layer (gain {gain:g}, bias gain "
                                    f"{bias_gain:g}, activation {activation!r})")
        clamps.add(layer.attr("conv_clamp"))
        if name == "torgb":
            _check_torgb(layer, key, path)
        else:
            _check_layer(layer, key, res, up=2 if name == "conv0" else 1, path=path)
    if res == 4 and "const" not in _params(block):
        raise NvidiaPickleError(f"{path}: synthesis.b4 has no const input")
    return int(_params(block.child("conv1"))["weight"].shape[0])


def _check_layer(layer: NetworkRecord, key: str, res: int, up: int, path: Path) -> None:
    activation = layer.attr("activation", "lrelu")
    if activation != "lrelu":
        raise NvidiaPickleError(f"{path}: {key} uses activation {activation!r} (only 'lrelu')")
    if _int_attr(layer, "up", up) != up or _int_attr(layer, "resolution", res) != res:
        raise NvidiaPickleError(f"{path}: {key} has up={layer.attr('up')} at resolution {layer.attr('resolution')}, "
                                f"expected up={up} at {res}")
    act_gain = layer.attr("act_gain", math.sqrt(2))
    if not isinstance(act_gain, (int, float, np.floating)) or not math.isclose(float(act_gain), math.sqrt(2),
                                                                                rel_tol=1e-6):
        raise NvidiaPickleError(f"{path}: {key} has activation gain {act_gain} (only √2)")


def _check_torgb(layer: NetworkRecord, key: str, path: Path) -> None:
    in_channels = int(_params(layer)["weight"].shape[1])
    gain = layer.attr("weight_gain", 1 / math.sqrt(in_channels))
    if not isinstance(gain, (int, float, np.floating)) or not math.isclose(float(gain), 1 / math.sqrt(in_channels),
                                                                            rel_tol=1e-4):
        raise NvidiaPickleError(f"{path}: {key} has weight gain {gain}, expected 1/√{in_channels}")


def _original_settings(g: NetworkRecord, mapping: NetworkRecord) -> dict:
    """The generator's constructor settings from the pickle, as JSON-safe values (for the model card)."""
    kwargs = g.attr("_init_kwargs")
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    synthesis_kwargs = kwargs.get("synthesis_kwargs") if isinstance(kwargs.get("synthesis_kwargs"), dict) else {}
    mapping_kwargs = kwargs.get("mapping_kwargs") if isinstance(kwargs.get("mapping_kwargs"), dict) else {}
    settings = {"z_dim": g.attr("z_dim"), "w_dim": g.attr("w_dim"), "c_dim": g.attr("c_dim"),
                "img_resolution": g.attr("img_resolution"), "img_channels": g.attr("img_channels")}
    for key in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture"):
        if key in synthesis_kwargs:
            settings[key] = synthesis_kwargs[key]
    for key in ("num_layers", "lr_multiplier", "w_avg_beta"):
        if key in mapping_kwargs:
            settings[f"mapping {key}"] = mapping_kwargs[key]
    if "mapping w_avg_beta" not in settings and mapping.attr("w_avg_beta") is not None:
        settings["mapping w_avg_beta"] = mapping.attr("w_avg_beta")
    return {k: _plain(v) for k, v in settings.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- mapping the weights ------------------------------------------------------------------------------------------
def rosinality_state(nv: StateDict, arch: NvidiaArchitecture, path: Path) -> StateDict:
    """NVIDIA-layout tensors → our Generator's state dict (rosinality keys), every key mapped explicitly.

    Raises if a needed NVIDIA key is missing, a resampling filter is not [1, 3, 3, 1], or keys are left over.
    Blur-kernel buffers are not in the result (the caller takes them from a fresh Generator)."""
    remaining = dict(nv)

    def take(key: str) -> torch.Tensor:
        if key not in remaining:
            raise NvidiaPickleError(f"{path}: G_ema lacks {key}")
        return remaining.pop(key).detach().to(torch.float32).contiguous()

    out: StateDict = {}
    for i in range(arch.mapping_layers):
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    if arch.has_w_avg:
        out["latent_avg"] = take("mapping.w_avg")
    out["input.input"] = take("synthesis.b4.const")[None]

    def layer(src: str, dst: str, noise_index: int) -> None:
        out[f"{dst}.conv.weight"] = take(f"{src}.weight")[None]
        out[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight")
        out[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias")
        out[f"{dst}.activate.bias"] = take(f"{src}.bias")
        res = 2 ** ((noise_index + 5) // 2)
        if f"{src}.noise_const" in remaining or f"{src}.noise_strength" in remaining:
            out[f"{dst}.noise.weight"] = take(f"{src}.noise_strength").reshape(1)
            out[f"noises.noise_{noise_index}"] = take(f"{src}.noise_const").reshape(1, 1, res, res)
        else:  # use_noise=False: a zero-strength noise input computes the same
            out[f"{dst}.noise.weight"] = torch.zeros(1)
            out[f"noises.noise_{noise_index}"] = torch.zeros(1, 1, res, res)

    def to_rgb(src: str, dst: str) -> None:
        out[f"{dst}.conv.weight"] = take(f"{src}.weight")[None]
        out[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight")
        out[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias")
        out[f"{dst}.bias"] = take(f"{src}.bias").reshape(1, -1, 1, 1)

    layer("synthesis.b4.conv1", "conv1", 0)
    to_rgb("synthesis.b4.torgb", "to_rgb1")
    for k, res in enumerate(arch.resolutions[1:]):
        layer(f"synthesis.b{res}.conv0", f"convs.{2 * k}", 2 * k + 1)
        layer(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")

    standard = make_blur_kernel(STANDARD_FILTER)
    for key in [k for k in remaining if k.endswith("resample_filter")]:
        f = remaining.pop(key)
        if tuple(f.shape) != tuple(standard.shape) or not torch.allclose(f.float(), standard, atol=1e-6):
            raise NvidiaPickleError(f"{path}: {key} is not the [1, 3, 3, 1] filter (only that one is supported)")
    if remaining:
        raise NvidiaPickleError(f"{path}: G_ema holds tensors this converter does not know: "
                                f"{_first_names(sorted(remaining), 6)}")
    return out


def convert_nvidia_generator(path: str | Path) -> tuple[GeneratorConfig, Generator, NvidiaArchitecture]:
    """Read an NVIDIA pickle's ``G_ema`` (as data) and return our config, our Generator with its weights, and the
    architecture that was read."""
    path = Path(path)
    g = find_g_ema(read_pickle(path), path)
    try:
        arch = read_architecture(g, path)
        ours = rosinality_state(network_tensors(g, path), arch, path)
    except NvidiaPickleError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:  # a structure we did not foresee
        raise NvidiaPickleError(f"{path}: G_ema does not have the structure of a StyleGAN2-ADA generator "
                                f"({type(e).__name__}: {e})") from None
    log.info("%s: G_ema is a %d-px StyleGAN2 generator (widths %s, %d mapping layers at lr %g, conv_clamp %s, "
             "w_avg %s)", path.name, arch.resolution, arch.channels, arch.mapping_layers, arch.lr_multiplier,
             arch.conv_clamp, "stored" if arch.has_w_avg else "absent")
    config = arch.generator_config()
    generator = Generator(**config.kwargs())
    fresh = generator.state_dict()
    ours |= {k: v for k, v in fresh.items() if k.endswith(".kernel")}  # the standard filters, checked above
    check_keys(path, "StyleGAN2 generator (G_ema)", {k: tuple(v.shape) for k, v in fresh.items()}, ours)
    generator.load_state_dict(ours, strict=True)
    return config, generator.eval(), arch


# -- the model folder -----------------------------------------------------------------------------------------------
def default_image_box(path: Path, size: int) -> tuple[int, int, int, int] | None:
    """The picture box of generators known by name: NVIDIA's LSUN car config-f pictures are 512×384 in rows
    64..448 of the 512×512 canvas. Anything else: the whole canvas (None)."""
    if "car-config-f" in path.name.lower() and size == 512:
        return CAR_CONFIG_F_BOX
    return None


def _check_box(box: tuple[int, int, int, int], size: int) -> tuple[int, int, int, int]:
    top, left, height, width = (int(v) for v in box)
    if min(top, left) < 0 or height <= 0 or width <= 0 or top + height > size or left + width > size:
        raise NvidiaPickleError(f"image box (top {top}, left {left}, height {height}, width {width}) does not fit "
                                f"inside the {size}×{size} canvas")
    return top, left, height, width


def convert_nvidia(checkpoint: str | Path, out: str | Path, name: str | None = None, license: str = "unknown",
                   license_link: str | None = None, truncation: float = 0.7,
                   image_box: tuple[int, int, int, int] | None = None, overwrite: bool = False,
                   progress: Callable[[str], None] | None = None) -> Path:
    """An NVIDIA StyleGAN2-ADA network pickle → a generator-only model folder (sampling, embedding and editing
    vectors work; painting needs a segmentation branch). ``image_box`` (top, left, height, width) places the picture
    in the canvas; without it, known generators get theirs (:func:`default_image_box`) and others the whole canvas."""
    say, checkpoint, out = begin_conversion(checkpoint, out, overwrite, truncation, progress, NvidiaPickleError)
    say(f"reading {checkpoint.name} as data (none of its code runs)")
    config, generator, arch = convert_nvidia_generator(checkpoint)
    box = _check_box(image_box, arch.resolution) if image_box is not None else \
        default_image_box(checkpoint, arch.resolution)
    if image_box is None and box is not None:
        say(f"{checkpoint.name}: the picture is the box {box} (top, left, height, width) of the canvas, as known "
            f"for this generator; --image-box overrides it")
    conversion = {"command": "python -m editgan convert nvidia",
                  "read": "G_ema only (G, D and augment_pipe are not converted)",
                  "truncation centre": "mapping.w_avg, stored as latent_avg" if arch.has_w_avg else
                  "sampled mean of mapped z (the pickle has no w_avg)"}
    conversion |= {f"original {k}": v for k, v in arch.original.items()}
    extra: dict = {"notes": [NO_SEGMENTER_NOTE], "sources": [file_record(checkpoint, "NVIDIA network pickle")],
                   "conversion": conversion}
    if license_link:
        extra["license_link"] = license_link
    model_config = ModelConfig(
        name=name or out.name, generator=config, image_box=box, truncation=truncation, license=license,
        provenance=f"Converted with `python -m editgan convert nvidia` from {checkpoint.name} (an NVIDIA "
                   f"StyleGAN2-ADA network pickle, its G_ema), read as data without running the pickle's code.",
        extra=extra)
    return write_new_model(out, ModelParts(model_config, generator), overwrite, say, NvidiaPickleError)

