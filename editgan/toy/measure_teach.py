"""Measure Teach on the embedded toy model: annotation folders with known-good label maps, and agreement.

    python -m editgan.toy.measure_teach perfect --out runs/teach/perfect16            # 16 samples, the shipped
    python -m editgan teach --model toy-faces --labels runs/teach/perfect16 --out runs/teach/perfect16-model
    python -m editgan.toy.measure_teach agree runs/teach/perfect16-model --seeds 32   # vs the shipped branch

    python -m editgan.toy.measure_teach truth --out runs/teach/truth16                # renders embedded like photos
    python -m editgan teach --model toy-faces --labels runs/teach/truth16 --out runs/teach/truth16-model
    python -m editgan evaluate --model runs/teach/truth16-model --faces 10             # and the same for toy-faces

``perfect``: the annotator is the shipped branch itself (its predicted label maps of the model's samples by
seed), so a taught branch can at best reproduce it. ``truth``: the annotator is the renderer (its exact label maps
of renders embedded like photos, as ``python -m editgan train segmenter`` labels the shipped branch's samples).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from editgan.engine.labels import miou
from editgan.engine.model import EditGANModel
from editgan.teach.annotations import AnnotationSet, write_annotations
from editgan.toy.build_model import ANNOTATION_SEED, embedded_renders

log = logging.getLogger(__name__)

AGREEMENT_SEED = 50_000
"""Samples compared in ``agree``: seeds from here on, far from the annotated ones (0…)."""


def perfect_annotations(model: EditGANModel, samples: int, first_seed: int = 0) -> AnnotationSet:
    """The model's samples by seed, labelled with its own branch's predictions."""
    annotations = AnnotationSet.for_model(model)
    annotations.truncation = model.config.truncation
    for seed in range(first_seed, first_seed + samples):
        rendering = model.sample(seed)
        annotations.add(rendering.labels, rendering.wplus, seed=seed)
    return annotations


def truth_annotations(model: EditGANModel, samples: int, embed_steps: int = 100) -> AnnotationSet:
    """Renders of the toy faces embedded like photos, labelled with the renderer's exact label maps (the first
    ``samples`` of the shipped branch's own training faces)."""
    seeds = list(range(ANNOTATION_SEED, ANNOTATION_SEED + samples))
    wplus, labels = embedded_renders(model, seeds, embed_steps)
    annotations = AnnotationSet.for_model(model)
    for seed, w, label_map in zip(seeds, wplus.numpy(), labels):
        annotations.add(label_map, w, name=f"render-{seed}")
    return annotations


def agreement(model: EditGANModel, reference: EditGANModel, seeds: list[int]) -> float:
    """Mean mIoU between the two models' label maps of the same samples (same generator)."""
    scores = [miou(model.sample(seed).labels, reference.sample(seed).labels) for seed in seeds]
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m editgan.toy.measure_teach", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("perfect", help="annotation folder labelled by the shipped branch")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples", type=int, default=16)
    p = sub.add_parser("truth", help="annotation folder of embedded renders labelled by the renderer")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--embed-steps", type=int, default=100)
    p = sub.add_parser("agree", help="mIoU of a taught model's label maps against the shipped model's")
    p.add_argument("model", type=Path)
    p.add_argument("--seeds", type=int, default=32)
    p.add_argument("--reference", default=None, help="default: the embedded toy model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "agree":
        model = EditGANModel.load(str(args.model), device="cpu")
        reference = EditGANModel.load(args.reference, device="cpu")
        seeds = list(range(AGREEMENT_SEED, AGREEMENT_SEED + args.seeds))
        print(f"mIoU vs {reference.config.name} on {args.seeds} samples (seeds {seeds[0]}…{seeds[-1]}): "
              f"{agreement(model, reference, seeds):.4f}")
        return
    model = EditGANModel.load(None, device="cpu")
    annotations = (perfect_annotations(model, args.samples) if args.what == "perfect"
                   else truth_annotations(model, args.samples, args.embed_steps))
    print(write_annotations(args.out, annotations))


if __name__ == "__main__":
    main()
