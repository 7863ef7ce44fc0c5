"""NVIDIA StyleGAN2-ADA network pickles made here, and NVIDIA's generator evaluated without editgan.

- :func:`nvidia_generator` builds torch modules with the class names, attributes, parameters and buffers that
  stylegan2-ada-pytorch's ``training/networks.py`` gives its ``Generator`` (random weights, small widths);
- :func:`dump_network_pickle` pickles a dict of networks the way NVIDIA's training loop does: every network becomes
  the call ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with ``meta`` = type, version,
  ``module_src``, class name and the module's ``__dict__`` (nested for submodules). The stand-in modules
  ``torch_utils.persistence`` and ``dnnlib.util`` exist in ``sys.modules`` only while dumping, so a loader cannot
  import them. The ``module_src`` written is code that would create a marker file if anyone ran it;
- :func:`reference_mapping` and :func:`reference_synthesis` compute NVIDIA's ``G.mapping(z, None)`` and
  ``G.synthesis(ws, noise_mode='const', force_fp32=True)`` from its semantics, in plain torch, on the NVIDIA-layout
  state dict: per-sample modulated and demodulated weights (the "fused" form), conv2d_resample's transposed
  convolution for upsampling followed by the FIR filter, upfirdn2d by zero insertion, bias_act with its clamp.
  Nothing here imports editgan, so the converter is checked against an independent evaluation.
"""
from __future__ import annotations

import copy
import math
import pickle
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MARKER_NAME = "module_src_was_executed"


@dataclass(frozen=True)
class Spec:
    """The constructor settings of one NVIDIA generator (names as in its ``Generator``/``SynthesisNetwork``)."""
    resolution: int = 32
    w_dim: int = 32
    z_dim: int | None = None  # None = w_dim
    c_dim: int = 0
    mapping_layers: int = 2
    lr_multiplier: float = 0.01
    channel_base: int = 256
    channel_max: int = 64
    conv_clamp: float | None = None
    use_noise: bool = True
    num_fp16_res: int = 0
    architecture: str = "skip"

    @property
    def resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def channels(self) -> dict[int, int]:
        return {r: min(self.channel_base // r, self.channel_max) for r in self.resolutions}

    @property
    def num_ws(self) -> int:
        return 2 * len(self.resolutions)

    @property
    def z(self) -> int:
        return self.w_dim if self.z_dim is None else self.z_dim


# -- stand-ins for NVIDIA's classes and dnnlib's EasyDict -------------------------------------------------------------
class _Network(nn.Module):
    """Base of the stand-ins; subclasses only carry NVIDIA's class names (the pickle records ``__name__``)."""


_CLASSES = {name: type(name, (_Network,), {}) for name in (
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer", "ToRGBLayer",
    "FullyConnectedLayer", "Discriminator", "SynthesisInput")}


class EasyDict(dict):
    """Pickled by reference as ``dnnlib.util.EasyDict``, like NVIDIA's kwargs dicts."""


EasyDict.__module__ = "dnnlib.util"


def network(class_name: str, init_kwargs: dict | None = None, **attributes: Any) -> nn.Module:
    """A stand-in network object: parameters, buffers (``buffers=``), submodules and plain attributes."""
    module = _CLASSES[class_name]()
    buffers = attributes.pop("buffers", {})
    for key, value in attributes.items():
        setattr(module, key, value)
    for key, value in buffers.items():
        module.register_buffer(key, value)
    module._init_args = ()
    module._init_kwargs = init_kwargs or {}
    return module


def resample_filter() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(taps, taps)
    return f / f.sum()


class _Random:
    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, *shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen) * scale + shift


def _fc(rnd: _Random, fan_in: int, fan_out: int, activation: str, lr: float, bias_init: float) -> nn.Module:
    """A FullyConnectedLayer as trained: raw weights (÷ lr), biases near their initial value, gains as attributes."""
    return network("FullyConnectedLayer", activation=activation,
                   weight=nn.Parameter(rnd(fan_out, fan_in) / lr),
                   bias=nn.Parameter(rnd(fan_out, scale=0.1 / lr, shift=bias_init / lr)),
                   weight_gain=np.float64(lr / np.sqrt(fan_in)), bias_gain=lr)


def _synthesis_layer(rnd: _Random, spec: Spec, cin: int, cout: int, res: int, up: int) -> nn.Module:
    buffers = {"resample_filter": resample_filter()}
    extra: dict = {}
    if spec.use_noise:
        buffers["noise_const"] = rnd(res, res)
        extra["noise_strength"] = nn.Parameter(rnd(scale=0.3))
    return network("SynthesisLayer", resolution=res, up=up, use_noise=spec.use_noise, activation="lrelu",
                   conv_clamp=spec.conv_clamp, padding=1, act_gain=np.sqrt(2),
                   affine=_fc(rnd, spec.w_dim, cin, "linear", 1.0, 1.0),
                   weight=nn.Parameter(rnd(cout, cin, 3, 3)), bias=nn.Parameter(rnd(cout, scale=0.2)),
                   buffers=buffers, **extra)


def _torgb(rnd: _Random, spec: Spec, cin: int) -> nn.Module:
    return network("ToRGBLayer", conv_clamp=spec.conv_clamp, affine=_fc(rnd, spec.w_dim, cin, "linear", 1.0, 1.0),
                   weight=nn.Parameter(rnd(3, cin, 1, 1)), bias=nn.Parameter(rnd(3, scale=0.1)),
                   weight_gain=np.float64(1 / np.sqrt(cin)))


def nvidia_generator(spec: Spec, seed: int = 0) -> nn.Module:
    """An NVIDIA-layout ``G_ema`` with random weights (nonzero biases, noise strengths and w_avg)."""
    rnd = _Random(seed)
    ch = spec.channels
    blocks = {}
    for res in spec.resolutions:
        layers: dict[str, Any] = {}
        if res == 4:
            layers["const"] = nn.Parameter(rnd(ch[4], 4, 4))
        else:
            layers["conv0"] = _synthesis_layer(rnd, spec, ch[res // 2], ch[res], res, up=2)
        layers["conv1"] = _synthesis_layer(rnd, spec, ch[res], ch[res], res, up=1)
        layers["torgb"] = _torgb(rnd, spec, ch[res])
        blocks[f"b{res}"] = network("SynthesisBlock", in_channels=0 if res == 4 else ch[res // 2], w_dim=spec.w_dim,
                                    resolution=res, img_channels=3, is_last=res == spec.resolution,
                                    architecture=spec.architecture, use_fp16=False, channels_last=False,
                                    num_conv=1 if res == 4 else 2, num_torgb=1,
                                    buffers={"resample_filter": resample_filter()}, **layers)
    synthesis = network("SynthesisNetwork", w_dim=spec.w_dim, img_resolution=spec.resolution,
                        img_resolution_log2=int(math.log2(spec.resolution)), img_channels=3,
                        block_resolutions=spec.resolutions, num_ws=spec.num_ws, **blocks)
    first_in = spec.z + (spec.w_dim if spec.c_dim else 0)  # a conditional mapping concatenates the label embedding
    fcs = {f"fc{i}": _fc(rnd, first_in if i == 0 else spec.w_dim, spec.w_dim, "lrelu", spec.lr_multiplier, 0.0)
           for i in range(spec.mapping_layers)}
    if spec.c_dim:
        fcs["embed"] = _fc(rnd, spec.c_dim, spec.w_dim, "linear", 1.0, 0.0)
    mapping = network("MappingNetwork", z_dim=spec.z, c_dim=spec.c_dim, w_dim=spec.w_dim, num_ws=spec.num_ws,
                      num_layers=spec.mapping_layers, w_avg_beta=0.995,
                      buffers={"w_avg": rnd(spec.w_dim, scale=0.5)}, **fcs)
    kwargs = EasyDict(z_dim=spec.z, c_dim=spec.c_dim, w_dim=spec.w_dim, img_resolution=spec.resolution,
                      img_channels=3,
                      mapping_kwargs=EasyDict(num_layers=spec.mapping_layers, lr_multiplier=spec.lr_multiplier),
                      synthesis_kwargs=EasyDict(channel_base=spec.channel_base, channel_max=spec.channel_max,
                                                num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp,
                                                architecture=spec.architecture))
    return network("Generator", init_kwargs=kwargs, z_dim=spec.z, c_dim=spec.c_dim, w_dim=spec.w_dim,
                   img_resolution=spec.resolution, img_channels=3, synthesis=synthesis, mapping=mapping,
                   num_ws=spec.num_ws).eval()


def tiny_discriminator(seed: int = 1) -> nn.Module:
    rnd = _Random(seed)
    return network("Discriminator", c_dim=0, img_resolution=8, b8=network(
        "FullyConnectedLayer", activation="lrelu", weight=nn.Parameter(rnd(4, 3)), bias=nn.Parameter(rnd(4)),
        weight_gain=np.float64(1 / np.sqrt(3)), bias_gain=1))


def training_snapshot(g_ema: nn.Module) -> dict:
    """The dict NVIDIA's training loop pickles (``network-snapshot-*.pkl``)."""
    return {"G": copy.deepcopy(g_ema), "D": tiny_discriminator(), "G_ema": g_ema, "augment_pipe": None,
            "training_set_kwargs": EasyDict(path="~/datasets/toy.zip", resolution=32, use_labels=False)}


# -- pickling as NVIDIA's persistence does ---------------------------------------------------------------------------
def _reconstruct_persistent_obj(meta: dict) -> Any:  # pickled by reference only; never called
    raise AssertionError("the loader must not call the pickle's functions")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


def module_source(marker: Path) -> str:
    """What a network pickle's ``module_src`` would be: here, code that leaves a marker file if it is ever run."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nclass Generator: pass\n"


class _NetworkPickler(pickle.Pickler):
    def __init__(self, file: Any, module_src: str, protocol: int):
        super().__init__(file, protocol=protocol)
        self.module_src = module_src

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _Network):
            meta = {"type": "class", "version": 6, "module_src": self.module_src,
                    "class_name": type(obj).__name__, "state": dict(obj.__dict__)}
            return _reconstruct_persistent_obj, (meta,), None
        return NotImplemented


@contextmanager
def stand_in_modules() -> Iterator[None]:
    """``torch_utils.persistence`` and ``dnnlib.util`` in sys.modules while a test pickle is written, then gone."""
    made = {}
    for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
        if name not in sys.modules:
            made[name] = sys.modules[name] = types.ModuleType(name)
    sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules["dnnlib.util"].EasyDict = EasyDict
    try:
        yield
    finally:
        for name in made:
            del sys.modules[name]


def dump_network_pickle(path: Path, data: Any, module_src: str = "", protocol: int = 4) -> Path:
    """Protocol 4 is pickle's default since Python 3.8; NVIDIA's Python 3.7 wrote 3."""
    with stand_in_modules(), open(path, "wb") as f:
        _NetworkPickler(f, module_src or module_source(path.with_name(MARKER_NAME)), protocol).dump(data)
    assert "torch_utils.persistence" not in sys.modules and "dnnlib.util" not in sys.modules
    return path


# -- NVIDIA's forward, from its semantics ----------------------------------------------------------------------------
SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor, bias: torch.Tensor, gain: float = SQRT2, clamp: float | None = None) -> torch.Tensor:
    """bias_act with act='lrelu': add the bias, leaky ReLU (0.2), multiply by the gain, then clamp."""
    x = F.leaky_relu(x + bias.reshape(1, -1, *[1] * (x.ndim - 2)), 0.2) * gain
    return x if clamp is None else x.clamp(-clamp, clamp)


def _linear(state: dict, key: str, x: torch.Tensor, lr: float = 1.0) -> torch.Tensor:
    weight = state[f"{key}.weight"]
    return x @ (weight * (lr / math.sqrt(weight.shape[1]))).t() + state[f"{key}.bias"] * lr


def reference_mapping(state: dict, spec: Spec, z: torch.Tensor) -> torch.Tensor:
    """``G.mapping(z, None)[:, 0]``: normalize the 2nd moment of z, then the leaky-ReLU layers."""
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for i in range(spec.mapping_layers):
        x = F.leaky_relu(_linear(state, f"mapping.fc{i}", x, spec.lr_multiplier), 0.2) * SQRT2
    return x


def _fir(x: torch.Tensor, f: torch.Tensor, up: int, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """upfirdn2d: insert up−1 zeros after every sample, pad, convolve (true convolution) with f · gain."""
    n, c, h, w = x.shape
    if up > 1:
        spread = x.new_zeros(n, c, h * up, w * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kernel = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)


def _modulated(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool, up: int,
               f: torch.Tensor | None) -> torch.Tensor:
    """One sample at a time: weights scaled by the styles (and demodulated), then convolved — or, with up=2, a
    stride-2 transposed convolution followed by the [1,3,3,1] filter with gain 4 and padding 1 (conv2d_resample)."""
    out = []
    for b in range(x.shape[0]):
        w = weight * styles[b].reshape(1, -1, 1, 1)
        if demodulate:
            w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        xb = x[b:b + 1]
        if up == 2:
            y = F.conv_transpose2d(xb, w.transpose(0, 1), stride=2)
            y = _fir(y, f, 1, (1, 1), gain=4.0)
        else:
            y = F.conv2d(xb, w, padding=w.shape[-1] // 2)
        out.append(y)
    return torch.cat(out)


def _layer(state: dict, key: str, spec: Spec, x: torch.Tensor, w: torch.Tensor, up: int) -> torch.Tensor:
    styles = _linear(state, f"{key}.affine", w)
    x = _modulated(x, state[f"{key}.weight"], styles, True, up, state[f"{key}.resample_filter"])
    if spec.use_noise:  # noise_mode='const'
        x = x + state[f"{key}.noise_const"] * state[f"{key}.noise_strength"]
    return _lrelu(x, state[f"{key}.bias"], clamp=spec.conv_clamp)


def _to_rgb(state: dict, key: str, spec: Spec, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    weight = state[f"{key}.weight"]
    styles = _linear(state, f"{key}.affine", w) / math.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3])
    y = _modulated(x, weight, styles, False, 1, None) + state[f"{key}.bias"].reshape(1, -1, 1, 1)
    return y if spec.conv_clamp is None else y.clamp(-spec.conv_clamp, spec.conv_clamp)


def reference_synthesis(state: dict, spec: Spec, ws: torch.Tensor) -> torch.Tensor:
    """``G.synthesis(ws, noise_mode='const', force_fp32=True)`` for the 'skip' architecture."""
    assert ws.shape[1] == spec.num_ws
    x = state["synthesis.b4.const"][None].repeat(ws.shape[0], 1, 1, 1)
    x = _layer(state, "synthesis.b4.conv1", spec, x, ws[:, 0], up=1)
    img = _to_rgb(state, "synthesis.b4.torgb", spec, x, ws[:, 1])
    row = 1
    for res in spec.resolutions[1:]:
        key = f"synthesis.b{res}"
        x = _layer(state, f"{key}.conv0", spec, x, ws[:, row], up=2)
        x = _layer(state, f"{key}.conv1", spec, x, ws[:, row + 1], up=1)
        img = _fir(img, state[f"{key}.resample_filter"], 2, (2, 1), gain=4.0)  # upsample2d
        img = img + _to_rgb(state, f"{key}.torgb", spec, x, ws[:, row + 2])
        row += 2
    return img
