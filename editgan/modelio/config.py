"""A model folder's ``config.json``: what the networks look like and what the app shows for them."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from editgan.colors import Color, hex_color, parse_color
from editgan.errors import ConfigError
from editgan.networks.encoder import EncoderConfig
from editgan.networks.fpn_encoder import FPNEncoderConfig
from editgan.networks.segmenter import SegmenterConfig

FORMAT = "editgan-studio"
FORMAT_VERSION = 2
"""The newest config.json this app reads. A config is written with the oldest version that describes it (1 unless
the generator uses a version-2 field), so folders without the new fields stay readable by older releases and a
folder with them is refused by an older release with "newer than this app understands" instead of a TypeError."""


# What a config.json may ask for, checked before any network is built: a folder or Hub repo from a stranger must not
# make the process allocate without bound. The largest published StyleGAN2 (config-f, 1024 px) has 30 M generator
# parameters and 512 channels; EditGAN's car branch has 10 members and 32 classes.
LIMITS = {"size": 1024, "style_dim": 1024, "n_mlp": 16, "channels": 1024, "generator_parameters": 100_000_000,
          "classes": 256, "members": 32, "hidden": 4096, "presets": 64, "encoder_size": 1024, "encoder_width": 2048}


@dataclass
class GeneratorConfig:
    size: int
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channels: dict[int, int] | None = None
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    lr_mlp: float = 0.01
    conv_clamp: float | None = None
    """Clamp of every synthesis layer and ToRGB output (NVIDIA's ``conv_clamp``); None = no clamping (format 2)."""
    stored_mean_latent: bool = False
    """generator.safetensors holds ``latent_avg``, the w average tracked in training, used as the truncation
    centre instead of a sampled mean (format 2)."""

    def kwargs(self) -> dict[str, Any]:
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channel_multiplier": self.channel_multiplier, "channels": self.channels,
                "blur_kernel": tuple(self.blur_kernel), "lr_mlp": self.lr_mlp, "conv_clamp": self.conv_clamp,
                "stored_mean_latent": self.stored_mean_latent}

    @property
    def n_latent(self) -> int:
        """Rows of the generator's w+: 2·log2(size) − 2, as :class:`~editgan.networks.stylegan2.Generator` has."""
        return 2 * (self.size.bit_length() - 1) - 2

    def widths(self) -> dict[int, int]:
        """Channels per resolution, 4 … size."""
        from editgan.networks.stylegan2 import default_channels
        table = self.channels or default_channels(self.channel_multiplier)
        return {4 * 2**i: table.get(4 * 2**i, 0) for i in range(max(0, self.size.bit_length() - 2))}

    def parameter_estimate(self) -> int:
        """About how many parameters the generator has (mapping, modulated convs, their styles), without building it."""
        widths = list(self.widths().values())
        total = self.n_mlp * self.style_dim * (self.style_dim + 1)
        previous = widths[0]
        for width in widths:
            total += 2 * (9 * previous * width + self.style_dim * previous) + 3 * width + self.style_dim * width
            previous = width
        return total

    @property
    def format_version(self) -> int:
        """The config.json format this generator needs: 2 when it uses a field that version 1 lacks."""
        return 2 if self.conv_clamp is not None or self.stored_mean_latent else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = {str(k): v for k, v in self.channels.items()} if self.channels else None
        d["blur_kernel"] = list(self.blur_kernel)
        for key in ("conv_clamp", "stored_mean_latent"):  # written only when used: version-1 files stay as they were
            if d[key] in (None, False):
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(d)
        if d.get("channels"):
            d["channels"] = {int(k): int(v) for k, v in d["channels"].items()}
        if "blur_kernel" in d:
            d["blur_kernel"] = tuple(d["blur_kernel"])
        return cls(**d)


@dataclass
class SegmenterSettings:
    """How the segmentation branch is built (its feature channels follow from the generator)."""
    n_members: int = 10
    hidden: tuple[int, int] | None = None
    upsample_mode: str = "bilinear"

    def to_dict(self) -> dict:
        return {"n_members": self.n_members, "hidden": list(self.hidden) if self.hidden else None,
                "upsample_mode": self.upsample_mode}

    def network_config(self, feature_channels: tuple[int, ...], n_classes: int) -> SegmenterConfig:
        """The segmenter network's full config: these settings plus what follows from the generator and classes."""
        return SegmenterConfig(tuple(feature_channels), n_classes, self.n_members, self.hidden, self.upsample_mode)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterSettings":
        hidden = d.get("hidden")
        return cls(int(d.get("n_members", 10)), tuple(hidden) if hidden else None,
                   d.get("upsample_mode", "bilinear"))


EncoderSettings = EncoderConfig | FPNEncoderConfig
"""An image encoder's config: our small convolutional encoder ("conv") or EditGAN's FPN encoder ("fpn")."""
ENCODER_TYPES: dict[str, type] = {"conv": EncoderConfig, "fpn": FPNEncoderConfig}


def encoder_settings(d: dict) -> EncoderSettings:
    """config.json's ``encoder`` entry → its typed config (``"type"`` picks the kind; absent means conv)."""
    kind = d.get("type", "conv")
    if kind not in ENCODER_TYPES:
        raise ConfigError(f"config.json names an encoder of unknown type {kind!r} (known: "
                          f"{', '.join(ENCODER_TYPES)}); update EditGAN Studio")
    try:
        return ENCODER_TYPES[kind].from_dict(d)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config.json's encoder entry is malformed: {e}") from e


@dataclass
class PresetInfo:
    """A preset editing vector as config.json lists it; the vector itself is ``vectors/<name>.safetensors``."""
    name: str
    display_name: str
    scale_range: tuple[float, float] = (-2.0, 2.0)
    default_scale: float = 1.0
    refine_steps: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale_range"] = list(self.scale_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PresetInfo":
        d = dict(d)
        d["scale_range"] = tuple(d.get("scale_range", (-2.0, 2.0)))
        return cls(**d)


@dataclass
class ModelConfig:
    name: str
    generator: GeneratorConfig
    class_names: list[str] = field(default_factory=list)
    palette: list[Color] = field(default_factory=list)
    segmenter: SegmenterSettings | None = None
    encoder: EncoderSettings | None = None
    image_box: tuple[int, int, int, int] | None = None
    """(top, left, height, width) of the picture inside the generator canvas; None = the whole canvas."""
    truncation: float = 0.7
    embed_encoder_weight: float = 1.0
    """Weight of the term that keeps w+ where the encoder would put G(w+) while a photo is embedded (EditGAN's
    latent regularizer, weight 1); lower lets the optimization reproduce the photo more closely."""
    presets: list[PresetInfo] = field(default_factory=list)
    license: str = "unknown"
    provenance: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.image_box or (0, 0, self.generator.size, self.generator.size)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": self.generator.format_version, "name": self.name,
            "generator": self.generator.to_dict(),
            "classes": [{"id": i, "name": n, "color": hex_color(c)}
                        for i, (n, c) in enumerate(zip(self.class_names, self.palette))],
            "segmenter": self.segmenter.to_dict() if self.segmenter else None,
            "encoder": self.encoder.to_dict() if self.encoder else None,
            "image_box": list(self.image_box) if self.image_box else None,
            "truncation": self.truncation, "embed_encoder_weight": self.embed_encoder_weight,
            "presets": [p.to_dict() for p in self.presets],
            "license": self.license, "provenance": self.provenance, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if d.get("format") != FORMAT:
            raise ConfigError(f"not an EditGAN Studio config (format {d.get('format')!r}, expected {FORMAT!r})")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ConfigError(f"config format version {d['format_version']} is newer than this app understands "
                              f"({FORMAT_VERSION}); update EditGAN Studio")
        try:
            classes = sorted(d.get("classes") or [], key=lambda c: c["id"])
            config = cls(
                name=d["name"], generator=GeneratorConfig.from_dict(d["generator"]),
                class_names=[c["name"] for c in classes], palette=[parse_color(c["color"]) for c in classes],
                segmenter=SegmenterSettings.from_dict(d["segmenter"]) if d.get("segmenter") else None,
                encoder=encoder_settings(d["encoder"]) if d.get("encoder") else None,
                image_box=tuple(d["image_box"]) if d.get("image_box") else None,
                truncation=float(d.get("truncation", 0.7)),
                embed_encoder_weight=float(d.get("embed_encoder_weight", 1.0)),
                presets=[PresetInfo.from_dict(p) for p in d.get("presets", [])],
                license=d.get("license", "unknown"), provenance=d.get("provenance", ""), extra=d.get("extra", {}),
            )
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"config.json is incomplete or malformed: {type(e).__name__}: {e}") from e
        if config.segmenter is not None and not config.class_names:
            raise ConfigError("config.json has a segmenter but lists no classes")
        check_limits(config)
        if not math.isfinite(config.embed_encoder_weight) or config.embed_encoder_weight < 0:
            raise ConfigError(f"config.json's embed_encoder_weight must be a number ≥ 0, got "
                              f"{config.embed_encoder_weight}")
        return config

    def save(self, folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "ModelConfig":
        path = folder / "config.json"
        if not path.is_file():
            raise ConfigError(f"no config.json in {folder}")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path} is not readable JSON: {e}") from e
        return cls.from_dict(data)


def check_limits(config: ModelConfig) -> None:
    """Refuse a config that asks for more than :data:`LIMITS` (before anything is allocated)."""
    g = config.generator

    def refuse(what: str, value, limit) -> None:
        raise ConfigError(f"config.json asks for {what} {value}; this app allows at most {limit}")

    if not isinstance(g.size, int) or g.size < 8 or g.size & (g.size - 1):
        raise ConfigError(f"config.json's generator size must be a power of two from 8 up, got {g.size!r}")
    if g.size > LIMITS["size"]:
        refuse("a generator of size", g.size, LIMITS["size"])
    if not 1 <= g.style_dim <= LIMITS["style_dim"]:
        refuse("style_dim", g.style_dim, LIMITS["style_dim"])
    if not 1 <= g.n_mlp <= LIMITS["n_mlp"]:
        refuse("mapping layers", g.n_mlp, LIMITS["n_mlp"])
    widths = g.widths()
    if min(widths.values()) < 1 or max(widths.values()) > LIMITS["channels"]:
        refuse("channel widths up to", max(widths.values()), LIMITS["channels"])
    if g.parameter_estimate() > LIMITS["generator_parameters"]:
        refuse("a generator of about", f"{g.parameter_estimate() / 1e6:.0f} M parameters",
               f"{LIMITS['generator_parameters'] / 1e6:.0f} M")
    if config.n_classes > LIMITS["classes"]:
        refuse("classes:", config.n_classes, LIMITS["classes"])
    if config.segmenter is not None:
        if not 1 <= config.segmenter.n_members <= LIMITS["members"]:
            refuse("segmenter members:", config.segmenter.n_members, LIMITS["members"])
        if config.segmenter.hidden and max(config.segmenter.hidden) > LIMITS["hidden"]:
            refuse("hidden widths up to", max(config.segmenter.hidden), LIMITS["hidden"])
    if len(config.presets) > LIMITS["presets"]:
        refuse("presets:", len(config.presets), LIMITS["presets"])
    if isinstance(config.encoder, EncoderConfig):
        if config.encoder.size > LIMITS["encoder_size"]:
            refuse("an encoder of size", config.encoder.size, LIMITS["encoder_size"])
        if max([*config.encoder.channels, config.encoder.hidden]) > LIMITS["encoder_width"]:
            refuse("encoder widths up to", max([*config.encoder.channels, config.encoder.hidden]),
                   LIMITS["encoder_width"])
    elif isinstance(config.encoder, FPNEncoderConfig):
        e = config.encoder
        if max(e.base_width * 8, e.fpn_dim, e.head_dim) > LIMITS["encoder_width"] or max(e.blocks) > 64:
            refuse("an FPN encoder of widths up to", max(e.base_width * 8, e.fpn_dim, e.head_dim),
                   LIMITS["encoder_width"])
    if config.image_box is not None:
        top, left, height, width = config.image_box
        if min(top, left) < 0 or height < 1 or width < 1 or top + height > g.size or left + width > g.size:
            raise ConfigError(f"config.json's image_box {list(config.image_box)} is not inside the "
                              f"{g.size}×{g.size} canvas")
