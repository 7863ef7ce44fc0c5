"""``python -m editgan evaluate``: edit quality of the toy model, measured against the renderer's true answers.

For held-out faces (seeds the training never drew), each face is treated as a user's photo:
1. embedding: encoder + optimization → PSNR of the reconstruction, mIoU of its label map vs the true one;
2. mask editing, for each preset edit: paint the true edited label map where it differs (as a user would),
   edit → mIoU vs the true edited map inside the ROI, PSNR outside the ROI vs the reconstruction, PSNR vs the
   true edited render;
3. vectors: apply each preset at scale 1 with 0 and 30 refinement steps → the same metrics;
4. the ceiling: the true edited render itself, embedded like a photo → the same metrics. No edit that never sees
   the true label map (a preset, refined or not) can be expected to beat it: it is as close to the true edit as
   this generator and segmenter get. A mask edit can, since it optimizes toward the true map in the ROI.
Timings of every step are recorded; a grid image shows before / painted / after / truth.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from editgan.colors import colorize
from editgan.engine.acceleration import SpeedOptions
from editgan.engine.labels import class_ious, mean_iou, miou
from editgan.engine.model import EditGANModel, EditOutcome
from editgan.toy import faces
from editgan.toy.edits import PRESETS, paint_true_edit

log = logging.getLogger(__name__)

HELD_OUT_SEED = 900_000
METHODS = ("mask", "vector", "vector_refined", "truth_embedded")
METHOD_LABELS = {"mask": "mask edit (painting the true edited map)", "vector": "preset vector, scale 1",
                 "vector_refined": "preset vector + refinement",
                 "truth_embedded": "ceiling: the true edited picture, embedded"}


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of uint8 pictures, over ``mask`` pixels when given."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask]
    mse = float(np.mean(diff ** 2)) if diff.size else 0.0
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def edit_metrics(outcome: EditOutcome, reconstruction: EditOutcome, true_image: np.ndarray,
                 true_labels: np.ndarray, roi: np.ndarray) -> dict[str, float]:
    return {"miou_roi": miou(outcome.labels, true_labels, roi),
            "psnr_outside_roi": psnr(outcome.image, reconstruction.image, ~roi),
            "psnr_vs_truth": psnr(outcome.image, true_image)}


def evaluate(model: EditGANModel, n_faces: int = 20, embed_steps: int = 100, edit_steps: int = 100,
             refine_steps: int = 30, edits: list[str] | None = None, grid_path: Path | None = None) -> dict:
    edits = list(PRESETS) if edits is None else edits  # [] measures the embedding only
    size = model.generator.size
    rows: dict[str, list] = {"embed": []}
    timings: dict[str, list[float]] = {"embed": [], "edit": [], "vector": [], "refine": []}
    grid_rows = []
    for i in range(n_faces):
        params = faces.sample_params(HELD_OUT_SEED + i)
        image, labels = faces.render(params, size)
        start = time.perf_counter()
        recon = model.embed(image, steps=embed_steps)
        timings["embed"].append(time.perf_counter() - start)
        ious = class_ious(recon.labels, labels)
        rows["embed"].append({"psnr": psnr(recon.image, image), "miou": mean_iou(ious), "class_iou": ious})
        for name in edits:
            edited = faces.apply_edit(params, name)
            if np.array_equal(edited, params):
                continue  # the face already shows this edit
            true_image, true_labels = faces.render(edited, size)
            wanted, painted = paint_true_edit(model, params, name, recon.labels)
            if not painted.any():
                continue
            start = time.perf_counter()
            mask_edit = model.edit(recon.wplus, wanted, painted, classes=faces.EDITS[name].classes,
                                   steps=edit_steps, name=name)
            timings["edit"].append(time.perf_counter() - start)
            roi = mask_edit.roi
            entry = {"face": i, "edit": name, "roi_fraction": float(roi.mean()),
                     "mask": edit_metrics(mask_edit, recon, true_image, true_labels, roi)}
            if name in model.presets:
                start = time.perf_counter()
                plain = model.apply_vector(recon.wplus, name, 1.0, 0)
                timings["vector"].append(time.perf_counter() - start)
                start = time.perf_counter()
                refined = model.apply_vector(recon.wplus, name, 1.0, refine_steps)
                timings["refine"].append(time.perf_counter() - start)
                entry["vector"] = edit_metrics(plain, recon, true_image, true_labels, roi)
                entry["vector_refined"] = edit_metrics(refined, recon, true_image, true_labels, roi)
            ceiling = model.embed(true_image, steps=embed_steps)
            entry["truth_embedded"] = edit_metrics(ceiling, recon, true_image, true_labels, roi)
            rows.setdefault("edits", []).append(entry)
            if grid_path is not None and name not in [r[0] for r in grid_rows]:  # one example per edit
                grid_rows.append((name, recon.image, colorize(wanted, model.config.palette), mask_edit.image,
                                  true_image))
        log.info("face %d/%d evaluated", i + 1, n_faces)
    report = summarize(rows, timings, model, n_faces, embed_steps, edit_steps, refine_steps)
    if grid_path is not None and grid_rows:
        save_grid(grid_rows, grid_path)
        report["grid"] = str(grid_path)
    return report


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 3) if values else float("nan")


def summarize(rows: dict, timings: dict, model: EditGANModel, n_faces: int, embed_steps: int, edit_steps: int,
              refine_steps: int) -> dict:
    edits = rows.get("edits", [])
    summary: dict = {
        "model": model.config.name, "faces": n_faces, "held_out_seeds": [HELD_OUT_SEED, HELD_OUT_SEED + n_faces - 1],
        "steps": {"embed": embed_steps, "edit": edit_steps, "refine": refine_steps},
        "perceptual_loss": model.perceptual.name,
        "speed": dataclasses.asdict(model.speed),
        "embedding": {"psnr": _mean([r["psnr"] for r in rows["embed"]]),
                      "miou": _mean([r["miou"] for r in rows["embed"]]),
                      "class_iou": {name: _mean([r["class_iou"][c] for r in rows["embed"] if c in r["class_iou"]])
                                    for c, name in enumerate(model.config.class_names)
                                    if any(c in r["class_iou"] for r in rows["embed"])}},
        "roi_fraction": _mean([e["roi_fraction"] for e in edits]),  # of the picture, on average
        "timings_s": {k: round(statistics.median(v), 3) for k, v in timings.items() if v},
        "per_edit": {},
    }
    for method in METHODS:
        chosen = [e[method] for e in edits if method in e]
        if chosen:
            summary[method] = {k: _mean([c[k] for c in chosen]) for k in chosen[0]}
    for name in sorted({e["edit"] for e in edits}):
        mine = [e for e in edits if e["edit"] == name]
        summary["per_edit"][name] = {m: {k: _mean([e[m][k] for e in mine]) for k in mine[0][m]}
                                     for m in METHODS if m in mine[0]}
    return summary


def save_grid(rows: list[tuple], path: Path, scale: int = 3) -> None:
    """One row per edit: before | painted label map | after | truth, each scaled up ``scale``× (nearest)."""
    tiles = [np.concatenate([np.asarray(t) for t in row[1:]], axis=1) for row in rows]
    grid = np.concatenate(tiles, axis=0)
    image = Image.fromarray(grid)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m editgan evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model to evaluate (default: the embedded toy model)")
    parser.add_argument("--faces", type=int, default=20)
    parser.add_argument("--embed-steps", type=int, default=100)
    parser.add_argument("--edit-steps", type=int, default=100)
    parser.add_argument("--refine-steps", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None, help="PNG of before / painted / after / truth")
    parser.add_argument("--edits", default=None,
                        help="comma-separated preset edits to measure (default: all); 'none' measures only the "
                             "embedding (PSNR and label-map mIoU), e.g. to compare segmentation branches")
    parser.add_argument("--bf16", action="store_true",
                        help="run every optimization's forward under bf16 autocast (SpeedOptions(bf16=True)), to "
                             "measure what it costs in quality against a run without it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    model = EditGANModel.load(args.model, device="cpu")
    model.speed = SpeedOptions(bf16=args.bf16)
    edits = None if args.edits is None else [e for e in args.edits.split(",") if e and e != "none"]
    unknown = sorted(set(edits or []) - set(PRESETS))
    if unknown:
        parser.error(f"unknown edits {', '.join(unknown)} (known: {', '.join(PRESETS)})")
    report = evaluate(model, args.faces, args.embed_steps, args.edit_steps, args.refine_steps, edits,
                      grid_path=args.grid)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
        print(f"wrote {args.json}")
    else:
        print(text)
