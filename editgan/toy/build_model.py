"""Build the embedded toy model around its trained generator: segmenter, encoder, preset vectors, model card.

    python -m editgan train generator  --minutes 60        # hours in total, resumable
    python -m editgan train encoder    --minutes 15
    python -m editgan train segmenter                      # ≤ 32 labelled renders, embedded; DatasetGAN-style
    python -m editgan train vectors                        # one example per preset, by mask editing

Each stage reads and updates the model folder (default ``assets/models/toy-faces``).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from editgan.engine.model import EditGANModel
from editgan.modelio.checkpoint import load_strict, read_weights, save_weights
from editgan.modelio.config import GeneratorConfig, ModelConfig, PresetInfo, SegmenterSettings
from editgan.networks.encoder import EncoderConfig, LatentEncoder
from editgan.networks.segmenter import SegmenterConfig
from editgan.networks.stylegan2 import Generator
from editgan.teach.training import SegmenterTrainingOptions, train_segmenter
from editgan.toy import faces
from editgan.toy.edits import PRESETS, paint_true_edit
from editgan.toy.prior import z_from_params

log = logging.getLogger(__name__)

FOLDER = Path("assets/models/toy-faces")
SEGMENTER = SegmenterSettings(n_members=4, hidden=(128, 32))
ANNOTATION_SEED = 1_000  # labelled samples for the segmenter
VECTOR_SEED = 2_000  # the one example face of each preset
VALIDATION_SEED = 3_000  # faces that choose among candidate examples (see stage_vectors)
STATUS_HEADING = "## Status"  # the model card's hand-written section, kept when the card is rebuilt
EXAMPLE_PAINTING = "the edit's change"  # how stage_vectors paints its example faces, as recorded in config.json
# EditGAN's latent regularizer holds embeddings of this model's faces back: at 0.1 instead of 1, 20 held-out faces
# embedded 1.7 dB closer (PSNR 33.2) with better label maps (mIoU 0.867 → 0.877), and every edit of them scored
# higher.
EMBED_ENCODER_WEIGHT = 0.1
PRESET_SCALE, PRESET_REFINE_STEPS = 1.0, 30  # the sliders' defaults, also how candidates are scored
def base_config(folder: Path) -> ModelConfig:
    """The folder's config.json, or a new one built from the generator's training record."""
    if (folder / "config.json").is_file():
        return ModelConfig.load(folder)
    record = json.loads((folder / "generator_training.json").read_text())
    return ModelConfig(
        name="toy-faces", generator=GeneratorConfig.from_dict(record["generator"]),
        class_names=list(faces.CLASS_NAMES), palette=[tuple(c) for c in faces.PALETTE],
        truncation=1.0,  # z ~ N(0, I) is exactly the renderer's prior: no truncation needed
        license="MIT (weights trained from scratch by EditGAN Studio on procedurally rendered faces)",
        provenance="python -m editgan train generator|segmenter|encoder|vectors (editgan/toy/)")


def load_generator(folder: Path, config: ModelConfig) -> Generator:
    g = Generator(**config.generator.kwargs())
    load_strict(g, read_weights(folder / "generator.safetensors"), "generator.safetensors does not fit config.json")
    return g.eval().requires_grad_(False)


def embedded_renders(model: EditGANModel, seeds: list[int], steps: int) -> tuple[torch.Tensor, np.ndarray]:
    """Renders of faces drawn by seed, each embedded like a photo: latents whose pictures the generator
    reproduces closely, paired with the renderer's exact label maps."""
    wplus, labels = [], []
    for i, seed in enumerate(seeds):
        image, label_map = faces.render(faces.sample_params(seed), model.generator.size)
        wplus.append(torch.from_numpy(model.embed(image, steps=steps).wplus).float())
        labels.append(label_map)
        log.info("segmenter: embedded labelled render %d/%d", i + 1, len(seeds))
    return torch.stack(wplus), np.stack(labels)


# -- stages ---------------------------------------------------------------------------------------------------
def stage_segmenter(folder: Path, samples: int, epochs: int, class_balance: float = 0.25,
                    embed_steps: int = 100) -> None:
    """DatasetGAN, few-shot: renders embedded like photos, labelled by the renderer's exact label maps, train an
    ensemble of pixel MLPs on the generator's features.

    Embedded renders rather than the generator's own samples of the same parameters: an embedded picture matches
    its render (and so its label map) far more closely, and it is what the segmenter sees at use. The folder's
    encoder, when it has one, gives the embedding its start, so train the encoder first."""
    if samples > 32:
        raise ValueError("the point is few-shot: use at most 32 labelled samples")
    config = base_config(folder)
    model = (EditGANModel.from_folder(folder, device="cpu") if (folder / "config.json").is_file()
             else EditGANModel(config, load_generator(folder, config), device="cpu"))  # just the generator so far
    start = time.time()
    wplus, labels = embedded_renders(model, list(range(ANNOTATION_SEED, ANNOTATION_SEED + samples)), embed_steps)
    g = model.generator
    seg_config = SegmenterConfig(tuple(g.feature_channels()), len(faces.CLASS_NAMES), SEGMENTER.n_members,
                                 SEGMENTER.hidden, SEGMENTER.upsample_mode)
    segmenter = train_segmenter(g, wplus, torch.from_numpy(labels).long(), seg_config,
                                SegmenterTrainingOptions(epochs=epochs, batch_size=4096,
                                                         class_balance=class_balance))
    save_weights(segmenter, folder / "segmenter.safetensors")
    config.segmenter = SEGMENTER
    config.extra["segmenter_training"] = {"labelled_samples": samples, "labelled": "embedded renders",
                                          "embed_steps": embed_steps, "encoder_start": model.encoder is not None,
                                          "epochs": epochs, "class_balance": class_balance,
                                          "seconds": round(time.time() - start)}
    config.save(folder)
    log.info("segmenter trained on %d embedded renders in %.0f s", samples, time.time() - start)


def stage_encoder(folder: Path, minutes: float, batch: int = 16) -> None:
    """Train image → w+ on generator samples: latent regression plus image reconstruction."""
    config = base_config(folder)
    g = load_generator(folder, config)
    enc_config = EncoderConfig(g.size, g.n_latent, g.style_dim)
    encoder = LatentEncoder(enc_config)
    previous = folder / "encoder.safetensors"
    earlier_steps = 0
    if previous.is_file() and config.encoder == enc_config:
        # the generator was trained further: fine-tune the encoder it had rather than start again
        load_strict(encoder, read_weights(previous), "encoder.safetensors does not fit the encoder")
        earlier_steps = int(config.extra.get("encoder_training", {}).get("steps", 0))
        log.info("encoder: continuing from %s (%d earlier steps)", previous, earlier_steps)
    with torch.no_grad():
        encoder.latent_avg.copy_(g.mean_latent()[None])
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    start, step = time.time(), 0
    while time.time() - start < minutes * 60:
        with torch.no_grad():
            wplus = g.to_wplus(g.mapping(torch.randn(batch, g.style_dim, generator=gen)))
            images = g.synthesis(wplus)
        predicted = encoder(images)
        loss = F.mse_loss(predicted, wplus) + F.l1_loss(g.synthesis(predicted), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            log.info("encoder step %d loss %.4f", step, loss.item())
    save_weights(encoder, folder / "encoder.safetensors")
    config.encoder = enc_config
    config.embed_encoder_weight = EMBED_ENCODER_WEIGHT
    earlier_seconds = int(config.extra.get("encoder_training", {}).get("seconds", 0)) if earlier_steps else 0
    config.extra["encoder_training"] = {"steps": earlier_steps + step, "batch": batch,
                                        "seconds": earlier_seconds + round(time.time() - start)}
    config.save(folder)


def _example_edits(model: EditGANModel, name: str, first_seed: int, embed_steps: int = 0,
                   only_the_change: bool = False):
    """Faces from ``first_seed`` on, each with the true edit painted as a user would: yields (seed, latent, label
    map, wanted label map, painted mask). Faces that already show the edit are skipped. With ``embed_steps`` the
    face is its render embedded like a photo (what the presets meet in use), else the generator's own sample.
    ``only_the_change`` is passed on to :func:`paint_true_edit`."""
    seed = first_seed
    while True:
        params = faces.sample_params(seed)
        if faces.apply_edit(params, name).tolist() != params.tolist():
            if embed_steps:
                current = model.embed(faces.render(params, model.generator.size)[0], steps=embed_steps)
            else:
                z = z_from_params(params, model.style_dim, seed)
                current = model.render(model.generator.to_wplus(model.generator.mapping(z))[0].numpy())
            wanted, painted = paint_true_edit(model, params, name, current.labels, only_the_change)
            if painted.sum() >= 4:
                yield seed, current.wplus, current.labels, wanted, painted
        seed += 1


def transfer_score(model: EditGANModel, vector, validation: list[tuple], refine_steps: int) -> float:
    """Mean mIoU, inside each edit's region of interest, between the true edited label map and what the vector
    (scale 1, then ``refine_steps`` of refinement) gives on the validation faces of :func:`_example_edits`."""
    from editgan.engine.editing import EditOptions
    from editgan.engine.labels import miou, region_of_interest
    dilation = EditOptions().roi_dilation  # the region a mask edit of this face would get
    scores = []
    for _, wplus, labels, wanted, painted in validation:
        roi = region_of_interest(torch.from_numpy(labels), torch.from_numpy(wanted), torch.from_numpy(painted),
                                 vector.classes, dilation).numpy()
        outcome = model.apply_vectors(wplus, [(vector, PRESET_SCALE)], refine_steps)
        scores.append(miou(outcome.labels, wanted, roi))
    return float(np.mean(scores))


def stage_vectors(folder: Path, steps: int, examples: int, candidates: int = 1, validation_faces: int = 6,
                  validation_embed_steps: int = 100) -> None:
    """Learn each preset the EditGAN way: mask-edit one example face, keep δw+ as the vector.

    The example is painted only where the edit changes the face (as a user makes an edit); painting the whole
    true edited map would also correct that face's own segmentation errors, and the vector would carry those
    corrections to every face it is applied to.

    ``examples`` > 1 averages that many examples' vectors. With ``candidates`` > 1, that many vectors are
    learned from different example faces and the one that transfers best to ``validation_faces`` other faces
    (after the app's default refinement) is kept: a fixed vector over- or undershoots on faces that need more or
    less of the edit than its example did, and some examples sit nearer the typical need than others. The
    validation faces are renders embedded like photos with ``validation_embed_steps`` (what a preset meets in
    use), or the generator's own samples when that is 0.
    """
    from editgan.modelio.vectors import EditingVector
    config = base_config(folder)
    model = EditGANModel.from_folder(folder, device="cpu")
    presets, chosen = [], {}
    start = time.time()
    for k, (name, (display, scale_range)) in enumerate(PRESETS.items()):
        classes = list(faces.EDITS[name].classes)
        examples_faces = _example_edits(model, name, VECTOR_SEED + 10 * k, only_the_change=True)
        validation = (list(islice(_example_edits(model, name, VALIDATION_SEED + 100 * k, validation_embed_steps),
                                  validation_faces))
                      if candidates > 1 else [])
        best = None
        for _candidate in range(candidates):
            deltas, seeds = [], []
            for _ in range(examples):
                seed, wplus, _, wanted, painted = next(examples_faces)
                outcome = model.edit(wplus, wanted, painted, classes=classes, steps=steps, name=name)
                deltas.append(outcome.vector.delta)
                seeds.append(seed)
            vector = EditingVector(name, np.mean(deltas, axis=0), classes, display, scale_range, PRESET_SCALE,
                                   PRESET_REFINE_STEPS)
            score = transfer_score(model, vector, validation, PRESET_REFINE_STEPS) if validation else float("nan")
            log.info("preset %s: vector from example face(s) %s, validation mIoU %.3f", name, seeds, score)
            if best is None or score > best[0]:
                best = (score, vector, seeds)
        best[1].save(folder / "vectors" / f"{name}.safetensors")
        chosen[name] = {"example_seeds": best[2]} | ({"validation_miou": round(best[0], 3)} if validation else {})
        presets.append(PresetInfo(name, display, scale_range, PRESET_SCALE, PRESET_REFINE_STEPS))
    config.presets = presets
    config.extra["vectors"] = {"examples_per_preset": examples, "example_painting": EXAMPLE_PAINTING,
                               "edit_steps": steps, "candidates": candidates,
                               "validation_faces": validation_faces if candidates > 1 else 0,
                               "validation_embed_steps": validation_embed_steps, "chosen": chosen,
                               "seconds": round(time.time() - start)}
    config.save(folder)


def _segmenter_summary(record: dict) -> str:
    samples = record.get("labelled_samples", "?")
    if "embed_steps" not in record:  # built before the segmenter learned from embedded renders
        return f"DatasetGAN ensemble from {samples} generator samples labelled with the renderer's exact label maps"
    start = "encoder guess + " if record.get("encoder_start") else ""
    return (f"DatasetGAN ensemble from {samples} renders (few-shot), each embedded like a photo ({start}"
            f"{record['embed_steps']} optimization steps) and labelled with its exact label map")


def _presets_summary(record: dict) -> str:
    painting = ("only where the edit changes the face's true map" if record.get("example_painting") == EXAMPLE_PAINTING
                else "wherever it differs from the face's predicted map")
    text = (f"each learned by mask-editing {record.get('examples_per_preset', 1)} example face(s), painting the "
            f"renderer's true edited label map {painting}")
    if record.get("candidates", 1) > 1:
        faces_kind = "renders embedded like photos" if record.get("validation_embed_steps") else "generator samples"
        text += (f"; of {record['candidates']} such vectors from different example faces, the one that transferred "
                 f"best (scale {PRESET_SCALE:g} + {PRESET_REFINE_STEPS} refinement steps) to "
                 f"{record['validation_faces']} validation faces ({faces_kind}) was kept")
    return text


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "n/a"


def _edit_quality_lines(report: dict) -> list[str]:
    """The card's table of the evaluation's methods, overall and per edit, and how the presets compare."""
    from editgan.modelio.model_card import markdown_table
    from editgan.toy.evaluate import METHOD_LABELS, METHODS

    methods = [m for m in METHODS if m in report]
    lines = markdown_table(["edit by", "mIoU in ROI vs truth", "PSNR outside ROI (dB)", "PSNR vs true edit (dB)"],
                           [[METHOD_LABELS[m], report[m]["miou_roi"], report[m]["psnr_outside_roi"],
                             report[m]["psnr_vs_truth"]] for m in methods]) + [""]
    per_edit = report.get("per_edit", {})
    if per_edit:
        lines += ["mIoU in the ROI per edit:", ""]
        lines += markdown_table(["edit"] + [METHOD_LABELS[m] for m in methods],
                                [[name] + [scores.get(m, {}).get("miou_roi", "") for m in methods]
                                 for name, scores in per_edit.items()]) + [""]
    if {"mask", "vector_refined", "truth_embedded"} <= set(report):
        refined, mask, ceiling = (report[m]["miou_roi"] for m in ("vector_refined", "mask", "truth_embedded"))
        lines += [f"The refined presets reach {_share(refined, mask)} of the mask edit's ROI mIoU and "
                  f"{_share(refined, ceiling)} of the ceiling's. The ceiling is the true edited picture itself, "
                  "embedded like a photo: as close to the true edit as this generator and segmenter get without "
                  "seeing the true label map. A mask edit scores above it because it optimizes toward that map "
                  "inside the ROI."
                  + (f" The simulated user paints the true edited map wherever it differs from the embedded face's "
                     f"map, so the ROI also takes in the embedding's own segmentation errors, which the mask edit "
                     f"then corrects: it covers {report['roi_fraction']:.0%} of the picture on average."
                     if "roi_fraction" in report else ""),
                  ""]
    return lines


def stage_card(folder: Path, evaluation: Path | None, bench: Path | None) -> Path:
    """The model card: the generic card from config.json plus how this model was trained and how it scores."""
    from editgan.modelio.model_card import markdown_table, render_model_card

    config = base_config(folder)
    record = json.loads((folder / "generator_training.json").read_text())
    extra = config.extra
    lines = [render_model_card(config).rstrip(), "", "## How it was trained", "",
             "Everything was trained from scratch on this project's 2-core CPU machines; the scripts are in "
             "`editgan/toy/` and run with `python -m editgan train generator|segmenter|encoder|vectors`.", ""]
    lines += markdown_table(["stage", "what", "cost"], [
        ["generator", _generator_summary(record),
         f"{record['step']} steps of batch {record['recipe']['batch']} ({record['images_seen']} rendered faces), "
         f"{record['cpu_seconds'] / 3600:.1f} h"],
        ["segmenter", _segmenter_summary(extra.get("segmenter_training", {})),
         f"{extra.get('segmenter_training', {}).get('seconds', '?')} s"],
        ["encoder", "image → w+ on generator samples: latent MSE + image L1",
         f"{extra.get('encoder_training', {}).get('steps', '?')} steps, "
         f"{extra.get('encoder_training', {}).get('seconds', '?')} s"],
        ["presets", _presets_summary(extra.get("vectors", {})),
         f"{extra['vectors']['seconds']} s in all" if "seconds" in extra.get("vectors", {}) else "seconds each"],
    ]) + [""]
    if evaluation is not None and evaluation.is_file():
        report = json.loads(evaluation.read_text())
        lines += ["## Edit quality (`python -m editgan evaluate`)", "",
                  f"{report['faces']} held-out faces (seeds {report['held_out_seeds'][0]}…"
                  f"{report['held_out_seeds'][1]}), each embedded like a photo and then edited; truth from the "
                  f"renderer. Perceptual loss: {report['perceptual_loss']}.", "",
                  f"Embedding: PSNR {report['embedding']['psnr']} dB, label-map mIoU {report['embedding']['miou']}.",
                  ""]
        if "class_iou" in report["embedding"]:
            lines += ["Embedding IoU by class: " + ", ".join(
                f"{name} {iou}" for name, iou in report["embedding"]["class_iou"].items()) + ".", ""]
        lines += _edit_quality_lines(report)
        lines += ["Median seconds per action on this CPU: " + ", ".join(
            f"{k} {v}" for k, v in report["timings_s"].items()), ""]
    if (folder / "evaluation_grid.png").is_file():
        lines += ["![before | painted | after | truth](evaluation_grid.png)", ""]
    if bench is not None and bench.is_file():
        embedded = json.loads(bench.read_text())["models"].get("embedded", {})
        if embedded and "skipped" not in embedded:
            lines += ["## Speed (`python -m editgan bench`)", ""]
            lines += markdown_table(["measure", "value"], [[k, v] for k, v in embedded.items()
                                                           if not isinstance(v, dict)]) + [""]
    path = folder / "README.md"
    status = _status_section(path.read_text(encoding="utf-8")) if path.is_file() else ""
    path.write_text("\n".join(lines) + "\n" + status, encoding="utf-8")
    return path


def _generator_summary(record: dict) -> str:
    text = ("parameter-conditioned StyleGAN2: z's first 23 entries are the face parameters through the normal CDF; "
            "trained to reproduce the renderer's face with L1 (×10 on eyes, brows, nose, mouth) + image-gradient L1 "
            "+ multi-scale L1")
    grown = record.get("grown_from")
    if grown is not None:
        size = record["generator"]["size"]
        widths = ", ".join(f"{r}: {c}" for r, c in record["generator"]["channels"].items() if int(r) > grown["size"])
        text += (f" at {grown['size']} px{_adversarial_summary(grown)}; then grown to {size} px at step "
                 f"{grown['step']} (new blocks of widths {widths}, their output layers starting at zero, so that "
                 f"it began as its {grown['size']}-px picture upsampled) and trained on at {size} px with the same "
                 f"loss")
    return text + _adversarial_summary(record) + "; EMA weights exported"


def _adversarial_summary(record: dict) -> str:
    recipe = record["recipe"]
    if not recipe.get("adv_weight"):
        return ""
    since = record.get("adversarial_from_step")
    when = f"from step {since} on" if since else "throughout"
    return (f"; {when}, plus {recipe['adv_weight']} × the non-saturating adversarial loss of a discriminator that "
            f"also sees the face parameters (lazy R1, γ {recipe['r1_gamma']} every {recipe['r1_every']} steps)")


def _status_section(card: str) -> str:
    """The card's hand-written status section (from its heading to the end), which a rebuilt card keeps."""
    start = card.find("\n" + STATUS_HEADING + "\n")
    return card[start + 1:] if start >= 0 else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m editgan train", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["segmenter", "encoder", "vectors", "card"])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--samples", type=int, default=32, help="segmenter: labelled samples (≤ 32)")
    parser.add_argument("--epochs", type=int, default=10, help="segmenter: epochs over the labelled pixels")
    parser.add_argument("--class-balance", type=float, default=0.25,
                        help="segmenter: CE weights ∝ class frequency^-x (0: plain CE)")
    parser.add_argument("--embed-steps", type=int, default=100,
                        help="segmenter: optimization steps embedding each labelled render")
    parser.add_argument("--minutes", type=float, default=15.0, help="encoder: training time")
    parser.add_argument("--steps", type=int, default=100, help="vectors: mask-editing steps per example")
    parser.add_argument("--examples", type=int, default=1, help="vectors: examples averaged per preset")
    parser.add_argument("--candidates", type=int, default=1,
                        help="vectors: learn this many and keep the one that transfers best to validation faces")
    parser.add_argument("--validate-on-photos", type=int, default=100, metavar="STEPS",
                        help="vectors: validation faces are renders embedded with STEPS steps (0: generator samples)")
    parser.add_argument("--evaluation", type=Path, default=None, help="card: JSON from python -m editgan evaluate")
    parser.add_argument("--bench", type=Path, default=None, help="card: JSON from python -m editgan bench")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    if args.stage == "segmenter":
        stage_segmenter(args.folder, args.samples, args.epochs, args.class_balance, args.embed_steps)
    elif args.stage == "encoder":
        stage_encoder(args.folder, args.minutes)
    elif args.stage == "vectors":
        stage_vectors(args.folder, args.steps, args.examples, args.candidates,
                      validation_embed_steps=args.validate_on_photos)
    else:
        print(stage_card(args.folder, args.evaluation, args.bench))
