"""The model card (README.md) of a model folder or Hub repo: YAML front matter for the Hub, then what a user needs.

The card is generated from ``config.json`` (classes, presets, generator, license, provenance) so that it cannot
disagree with the weights. ``ModelConfig.extra`` may add card-only facts:

- ``license_id``, ``license_name``, ``license_link``: the Hub's license metadata (``license_id`` is a Hub license
  identifier such as ``mit`` or ``other``; with ``other``, ``license_name`` and ``license_link`` say which);
- ``notes``: a list of remarks (known differences from an original release, limitations);
- ``sources``: a list of ``{"file", "bytes", "sha256", "role"}`` describing converted input files;
- ``conversion``: a flat ``{setting: value}`` dict saying how a converter read a foreign file (what it took, the
  original network's settings), shown as its own table;
- ``teach``: how Teach taught the segmentation branch (samples, options, time, held-out agreement), shown under
  the branch's classes.
"""
from __future__ import annotations

import re
from pathlib import Path

from editgan.colors import hex_color
from editgan.modelio.config import ModelConfig

LIBRARY_NAME = "editgan-studio"
BASE_TAGS = ["editgan", "stylegan2", "image-editing", "semantic-image-editing", "gan"]
# license identifiers the Hub understands that a model here is likely to carry
_HUB_LICENSES = {"mit", "apache-2.0", "bsd-3-clause", "bsd-2-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
                 "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0",
                 "openrail", "creativeml-openrail-m", "unlicense", "other", "unknown"}
NO_SEGMENTER_NOTE = ("This model has no segmentation branch: it can sample pictures, embed photos and apply "
                     "editing vectors, but mask editing (painting on the label map) and vector refinement need a "
                     "segmentation branch (DatasetGAN pixel classifiers trained on this generator's features).")


def hub_license(config: ModelConfig) -> dict[str, str]:
    """The Hub's license metadata for ``config``: ``license`` and, for ``other``, ``license_name``/``license_link``."""
    extra = config.extra or {}
    if extra.get("license_id"):
        out = {"license": str(extra["license_id"])}
    else:
        text = (config.license or "").strip()
        first = re.split(r"[\s(,;]+", text.lower(), maxsplit=1)[0] if text else "unknown"
        out = {"license": first if first in _HUB_LICENSES else "other"}
        if out["license"] == "other" and text:
            slug = re.sub(r"[^a-z0-9]+", "-", text.split("(")[0].lower()).strip("-")[:48].strip("-")
            out["license_name"] = slug or "custom"
    for key in ("license_name", "license_link"):
        if extra.get(key):
            out[key] = str(extra[key])
    return out


def _front_matter(config: ModelConfig) -> str:
    from huggingface_hub import ModelCardData

    tags = list(BASE_TAGS)
    if config.segmenter is not None:
        tags.append("semantic-segmentation")
    tags += [str(t) for t in (config.extra or {}).get("tags", []) if str(t) not in tags]
    data = ModelCardData(library_name=LIBRARY_NAME, tags=tags, **hub_license(config))
    return "---\n" + data.to_yaml() + "\n---\n"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def teach_lines(record: dict) -> list[str]:
    """The card's account of a branch taught with Teach, from ``extra["teach"]`` (see ``editgan.teach.branch``)."""
    pixels, epochs = record.get("pixels_per_image"), record.get("epochs", "?")
    lines = ["### How the branch was taught", "",
             f"Taught with EditGAN Studio's Teach ({record.get('date', 'date not recorded')}) from "
             f"**{record.get('samples', '?')} annotated samples** of model `{record.get('source', '?')}`"
             + (", replacing its branch" if record.get("replaced_branch") else "")
             + f": {record.get('members', '?')} classifiers, {epochs} epoch{'' if epochs == 1 else 's'} over "
             + (f"up to {pixels} sampled pixels of each" if pixels else "every pixel")
             + f", class balance {record.get('class_balance', '?')}. Training took "
             f"{record.get('training_seconds', '?')} s on {record.get('device', '?')} ({record.get('seconds', '?')} s "
             "with the held-out check).", ""]
    agreement = record.get("agreement")
    if agreement:
        lines += [f"**Held-out agreement: mIoU {agreement['miou']}** ({agreement['folds']} folds). Computed by "
                  f"{agreement.get('method', 'leave-some-out over the annotated samples')}.", ""]
        if agreement.get("class_iou"):
            lines += markdown_table(["class", "held-out IoU"], [[k, v] for k, v in agreement["class_iou"].items()])
            lines += [""]
    else:
        lines += ["No held-out agreement was measured.", ""]
    if record.get("dropped_presets"):
        lines += ["The source's presets " + ", ".join(f"`{p}`" for p in record["dropped_presets"]) + " were "
                  "dropped: they name the classes of the branch that was replaced.", ""]
    return lines


def render_model_card(config: ModelConfig, repo_id: str | None = None) -> str:
    """README.md text for a model with ``config``; ``repo_id`` (if known) goes into the usage snippet."""
    g = config.generator
    log_size = g.size.bit_length() - 1
    n_latent = 2 * log_size - 2
    extra = config.extra or {}
    where = repo_id or config.name
    lines = [_front_matter(config), f"# {config.name}", ""]
    parts = [f"a {g.size}×{g.size} StyleGAN2 generator (w+ of {n_latent}×{g.style_dim})"]
    if config.segmenter is not None:
        parts.append(f"a segmentation branch of {config.segmenter.n_members} DatasetGAN pixel classifiers over "
                     f"{config.n_classes} classes")
    if config.encoder is not None:
        parts.append(f"an image encoder ({config.encoder.to_dict()['type']})")
    lines += ["An EditGAN Studio model: " + ", ".join(parts) + ".",
              "", "## Use", "", "```python", "import editgan", "",
              f'model = editgan.load("{where}")', "picture = model.sample(seed=0)   # .image, .labels, .wplus",
              "```", "", f"or `python app.py --model {where}`, or `python -m editgan sample --model {where}`.", ""]
    if config.segmenter is None:
        lines += ["> **Mask editing is not available.** " + NO_SEGMENTER_NOTE, ""]

    top, left, height, width = config.box
    channels = ", ".join(f"{r}: {c}" for r, c in sorted(g.channels.items())) if g.channels else \
        f"standard widths, channel multiplier {g.channel_multiplier}"
    lines += ["## Generator", ""] + markdown_table(["setting", "value"], [
        ["size", f"{g.size}×{g.size}"], ["style_dim", g.style_dim], ["mapping layers (n_mlp)", g.n_mlp],
        ["channels per resolution", channels], ["w+ rows (n_latent)", n_latent],
        ["blur kernel", list(g.blur_kernel)], ["mapping lr multiplier", g.lr_mlp],
        ["picture box in the canvas (top, left, height, width)", f"({top}, {left}, {height}, {width})"],
        ["sampling truncation", config.truncation],
    ] + ([["conv clamp (synthesis and ToRGB outputs)", f"±{g.conv_clamp:g}"]] if g.conv_clamp is not None else [])
      + ([["truncation centre", "`latent_avg` stored with the weights (the w average tracked in training)"]]
         if g.stored_mean_latent else [])) + [""]

    if config.segmenter is not None:
        s = config.segmenter
        hidden = list(s.hidden) if s.hidden else "DatasetGAN default"
        lines += ["## Segmentation branch", "",
                  f"{s.n_members} pixel classifiers (Linear → ReLU → BatchNorm, hidden widths {hidden}) read every "
                  f"generator feature map upsampled with `{s.upsample_mode}`; the prediction is the mean of their "
                  "logits.", "", "### Classes", ""]
        lines += markdown_table(["id", "name", "color"], [[i, name, f"`{hex_color(color)}`"] for i, (name, color)
                                                  in enumerate(zip(config.class_names, config.palette))]) + [""]
        if extra.get("teach"):
            lines += teach_lines(extra["teach"])

    if config.presets:
        lines += ["## Preset editing vectors", "",
                  "Each preset is a δw+ (`vectors/<name>.safetensors`) added to a picture's latent with the slider's "
                  "scale, optionally refined for the given number of optimizer steps.", ""]
        rows = [[p.name, p.display_name, f"{p.scale_range[0]:g} … {p.scale_range[1]:g}", f"{p.default_scale:g}",
                 p.refine_steps] for p in config.presets]
        lines += markdown_table(["name", "display name", "scale range", "default scale", "refine steps"], rows) + [""]

    if config.encoder is not None:
        kind = config.encoder.to_dict()["type"]
        about = ("EditGAN's FPN encoder (ResNet-50 bottom-up path, feature pyramid, one head per w+ row)"
                 if kind == "fpn" else "EditGAN Studio's small convolutional encoder")
        lines += ["## Encoder", "", f"{about}. It gives the starting latent when a photo is embedded, which "
                  "optimization then refines, keeping w+ near where the encoder would put its picture with weight "
                  f"{config.embed_encoder_weight:g} (EditGAN's: 1).", ""]
        lines += markdown_table(["setting", "value"], [[k, v] for k, v in config.encoder.to_dict().items()]) + [""]

    notes = list(extra.get("notes", []))
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]

    conversion = extra.get("conversion") or {}
    if conversion:
        lines += ["## Conversion", ""] + markdown_table(["step or original setting", "value"],
                                                        [[k, v] for k, v in conversion.items()]) + [""]

    lines += ["## Provenance", "", config.provenance or "Not recorded.", ""]
    sources = extra.get("sources") or []
    if sources:
        lines += markdown_table(["role", "file", "bytes", "sha256"],
                        [[s.get("role", ""), f"`{s.get('file', '')}`", s.get("bytes", ""), f"`{s.get('sha256', '')}`"]
                         for s in sources]) + [""]
    lic = hub_license(config)
    lines += ["## License", "", config.license or "unknown"]
    if lic.get("license_link"):
        lines += ["", f"License text: {lic['license_link']}"]
    lines += ["", "## Files", "",
              "`config.json` (architecture, classes, presets), `generator.safetensors` (rosinality `g_ema` layout"
              + (" plus `latent_avg`" if g.stored_mean_latent else "") + ")"
              + (", `segmenter.safetensors`" if config.segmenter is not None else "")
              + (", `encoder.safetensors`" if config.encoder is not None else "")
              + (", `vectors/*.safetensors`" if config.presets else "") + ". Weights are safetensors only.", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, config: ModelConfig, repo_id: str | None = None,
                     overwrite: bool = False) -> Path | None:
    """Write ``folder/README.md`` unless one exists (or ``overwrite``); returns the path written, else None."""
    path = Path(folder) / "README.md"
    if path.exists() and not overwrite:
        return None
    path.write_text(render_model_card(config, repo_id), encoding="utf-8")
    return path
