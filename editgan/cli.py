"""``python -m editgan <command>``: the engine's actions from the command line.

Commands: sample, edit, apply, embed, bench, train (toy model stages), evaluate, convert (foreign checkpoints →
model folder), teach (annotation folder → a model with a taught segmentation branch), push (model folder →
Hugging Face Hub). Each prints where it wrote
its files; errors are one line, no stack trace.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _save_rendering(out: Path, rendering, palette) -> list[Path]:
    from editgan.modelio.picture_files import write_rendering
    return write_rendering(out, rendering.image, rendering.labels, palette, rendering.wplus)


def cmd_sample(args) -> None:
    from editgan.engine.model import load
    model = load(args.model, args.device)
    sample = model.sample(args.seed, args.truncation)
    for path in _save_rendering(args.out, sample, model.config.palette):
        print(path)


def cmd_edit(args) -> None:
    """Edit from a painted label map given as a PNG in the model's palette (or a .npy of class ids)."""
    from editgan.engine.model import load
    from editgan.modelio.picture_files import read_label_map, read_latent
    model = load(args.model, args.device)
    wplus = read_latent(args.latent)
    current = model.render(wplus)
    if current.labels is None:
        raise ValueError(f"model {model.config.name!r} has no segmentation branch, so it cannot edit by label map")
    wanted = read_label_map(args.painted, model.config.palette, current.labels.shape)
    painted = wanted != current.labels
    outcome = model.edit(wplus, wanted, painted, steps=args.steps, name=args.name,
                         on_step=lambda p: print(f"\rstep {p.step}/{p.steps} loss {p.loss:.4f}", end="",
                                                 file=sys.stderr))
    print(file=sys.stderr)
    for path in _save_rendering(args.out, outcome, model.config.palette):
        print(path)
    print(outcome.vector.save(args.out / f"{args.name}.safetensors"))


def cmd_apply(args) -> None:
    from editgan.engine.model import load
    from editgan.modelio.picture_files import read_latent
    from editgan.modelio.vectors import EditingVector
    model = load(args.model, args.device)
    vector = args.vector if args.vector in model.presets else EditingVector.load(Path(args.vector))
    outcome = model.apply_vector(read_latent(args.latent), vector, args.scale, args.refine)
    for path in _save_rendering(args.out, outcome, model.config.palette):
        print(path)


def cmd_embed(args) -> None:
    from editgan.engine.model import load
    model = load(args.model, args.device)
    outcome = model.embed(args.image, steps=args.steps)
    for path in _save_rendering(args.out, outcome, model.config.palette):
        print(path)


def cmd_bench(args) -> None:
    if args.load:
        from editgan.app.loadtest import run_load_test
        report = run_load_test(args.model, args.clients, args.ops, args.edit_steps, device=args.device or "cpu",
                               progress=lambda text: print(text, file=sys.stderr, flush=True))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1) + "\n")
            print(f"wrote {args.json}")
        else:
            print(json.dumps(report, indent=1))
        return
    from editgan.bench import run
    report = run(args.models.split(",") if args.models else None, args.repeats, args.full, args.device, args.json)
    if args.json:
        print(f"wrote {args.json}")
    else:
        print(json.dumps(report, indent=1))


def cmd_train(args) -> None:
    from editgan.toy import train_generator
    if args.stage == "generator":
        train_generator.main(args.rest)
    else:
        from editgan.toy import build_model
        build_model.main([args.stage, *args.rest])


def cmd_evaluate(args) -> None:
    from editgan.toy import evaluate
    evaluate.main(args.rest)


def cmd_convert(args) -> None:
    def progress(message: str) -> None:
        print(message, flush=True)

    if args.format == "editgan-car":
        from editgan.modelio.convert.editgan_car import convert_editgan_car
        out = convert_editgan_car(args.generator, args.classifiers, args.out, args.vectors, args.encoder, args.name,
                                  args.overwrite, progress, args.license)
    elif args.format == "nvidia":
        from editgan.modelio.convert.nvidia import convert_nvidia
        out = convert_nvidia(args.checkpoint, args.out, args.name, args.license, args.license_link, args.truncation,
                             tuple(args.image_box) if args.image_box else None, args.overwrite, progress)
    else:
        from editgan.modelio.convert.rosinality import convert_rosinality
        out = convert_rosinality(args.checkpoint, args.out, args.size, args.channel_multiplier, args.name,
                                 args.license, args.license_link, args.truncation, args.overwrite, progress)
    print(f"converted: {out}")


def cmd_teach(args) -> None:
    """Teach a model a segmentation branch from an annotation folder and write the taught model."""
    from editgan.engine.model import load
    from editgan.errors import TeachError
    from editgan.modelio.checkpoint import check_output_folder
    from editgan.teach.annotations import load_annotations
    from editgan.teach.branch import TeachOptions, save_taught_model, teach_branch

    check_output_folder(args.out, args.overwrite, TeachError)  # before minutes of training, not after
    options = TeachOptions(members=args.members, epochs=args.epochs, pixels_per_image=args.pixels_per_image or None,
                           class_balance=args.class_balance, seed=args.seed, agreement_folds=args.agreement_folds,
                           row_budget_gb=args.row_budget_gb)
    options.check()
    model = load(args.model, args.device)
    annotations = load_annotations(args.labels, model)
    print(f"{len(annotations.samples)} annotated samples, {annotations.n_classes} classes; teaching "
          f"{model.config.name} on {model.device}", flush=True)

    def progress(p) -> None:
        t = p.training
        if p.stage == "branch" or t.epoch == t.epochs:  # the held-out folds: one line per member
            print(f"[{p.fraction:4.0%}] {p.stage}: member {t.member}/{t.members} epoch {t.epoch}/{t.epochs} "
                  f"loss {t.loss:.4f}", flush=True)

    taught, report = teach_branch(model, annotations, options, progress, name=args.name)
    for line in report.summary():
        print(line)
    print(f"taught: {save_taught_model(taught, args.out, args.overwrite)}")


def cmd_push(args) -> None:
    from editgan.modelio.hub import push
    push(args.folder, args.repo_id, private=args.private, branch=args.branch, token=args.token,
         message=args.message, progress=lambda text: print(text, flush=True))


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", required=True)
    p = sub.add_parser("editgan-car", help="the official EditGAN car release (generator, classifiers, vectors, "
                                           "encoder)")
    p.add_argument("--generator", type=Path, required=True,
                   help="stylegan2_networks_stylegan2-car-config-f.pt (rosinality format; 'g_ema' is used)")
    p.add_argument("--classifiers", type=Path, nargs="+", required=True,
                   help="folder with car_model_0..9.pth, or the files")
    p.add_argument("--vectors", type=Path, nargs="*", default=[],
                   help="folder with the release's editing_vectors/*.npy, or the files")
    p.add_argument("--encoder", type=Path, default=None, help="BEST_loss*.pth (the FPN encoder)")
    p.add_argument("--name", default="editgan-car")
    p.add_argument("--license", default=None,
                   help="license of the files (default: the official release's NVIDIA Source Code License-NC)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("rosinality", help="a rosinality stylegan2-pytorch checkpoint (generator only)")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--size", type=int, default=None, help="checked against the checkpoint (inferred if omitted)")
    p.add_argument("--channel-multiplier", type=int, default=None, help="checked against the checkpoint")
    p.add_argument("--name", default=None)
    p.add_argument("--license", default="unknown", help="license of the weights, e.g. mit, cc-by-nc-4.0, or text")
    p.add_argument("--license-link", default=None)
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("nvidia", help="an NVIDIA StyleGAN2-ADA network pickle (its G_ema; read as data, none of its "
                                      "code runs)")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="network .pkl (e.g. ffhq.pkl, network-snapshot-*.pkl)")
    p.add_argument("--name", default=None)
    p.add_argument("--license", default="unknown", help="license of the weights, e.g. cc-by-nc-4.0, or text")
    p.add_argument("--license-link", default=None)
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--image-box", type=int, nargs=4, metavar=("TOP", "LEFT", "HEIGHT", "WIDTH"), default=None,
                   help="the picture inside the canvas (default: the whole canvas; NVIDIA's car config-f "
                        "pickle is recognised by name: 64 0 384 512)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m editgan", description="EditGAN Studio engine")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_model(p):
        p.add_argument("--model", default=None, help="hub repo id, folder, or embedded name (default: embedded)")
        p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
        return p

    p = with_model(sub.add_parser("sample", help="draw a picture by seed"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None)
    p.add_argument("--out", type=Path, default=Path("out/sample"))
    p.set_defaults(func=cmd_sample)

    p = with_model(sub.add_parser("edit", help="edit a latent toward a painted label map"))
    p.add_argument("latent", type=Path, help=".npy w+ latent (from sample or embed)")
    p.add_argument("painted", type=Path, help="wanted label map: PNG in the model's palette, or .npy of ids")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--name", default="my_edit")
    p.add_argument("--out", type=Path, default=Path("out/edit"))
    p.set_defaults(func=cmd_edit)

    p = with_model(sub.add_parser("apply", help="apply an editing vector (preset name or .safetensors)"))
    p.add_argument("latent", type=Path)
    p.add_argument("vector")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--refine", type=int, default=0, help="self-supervised refinement steps")
    p.add_argument("--out", type=Path, default=Path("out/apply"))
    p.set_defaults(func=cmd_apply)

    p = with_model(sub.add_parser("embed", help="find the latent of a photo"))
    p.add_argument("image", type=Path)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--out", type=Path, default=Path("out/embed"))
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("bench", help="speed and memory benchmark, as JSON")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--models", default=None, help="comma-separated: embedded, random-256, random-512, random-1024 "
                                                  "(CUDA only), car-512 (time to picture and to label map; an "
                                                  "edit's overhead); default all but random-1024 and car-512 on a "
                                                  "CPU")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full", action="store_true", help="run 100-step edits on the big models too (slow on CPU)")
    p.add_argument("--device", default=None)
    p.add_argument("--load", action="store_true",
                   help="load test instead: the studio on 127.0.0.1, --clients visitors × --ops mixed actions")
    p.add_argument("--model", default=None, help="with --load: the model to serve (default: the embedded one)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--ops", type=int, default=10)
    p.add_argument("--edit-steps", type=int, default=20)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train the embedded toy model: generator, segmenter, encoder, vectors",
                       add_help=False)
    p.add_argument("stage", choices=["generator", "segmenter", "encoder", "vectors", "card"])
    p.set_defaults(func=cmd_train, passes_options=True)  # the stage's own options go to its parser

    p = sub.add_parser("convert", help="turn foreign checkpoints (EditGAN car release, rosinality StyleGAN2, NVIDIA "
                                       "StyleGAN2-ADA pickles) into a model folder")
    _convert_arguments(p)
    p.set_defaults(func=cmd_convert)

    p = with_model(sub.add_parser("teach", help="teach a model (any: embedded, folder, Hub id) a segmentation branch "
                                                "from an annotation folder, replacing any branch it has"))
    p.add_argument("--labels", type=Path, required=True,
                   help="annotation folder: classes.json, <seed>.png label maps, or <name>.png beside <name>.npy")
    p.add_argument("--out", type=Path, required=True, help="folder for the taught model")
    p.add_argument("--members", type=int, default=4, help="classifiers in the ensemble (DatasetGAN: 10)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--pixels-per-image", type=int, default=4096, help="labelled pixels sampled per map (0: all)")
    p.add_argument("--row-budget-gb", type=float, default=4.0,
                   help="memory for the training rows; beyond it fewer pixels are sampled per map (default: 4)")
    p.add_argument("--class-balance", type=float, default=0.25,
                   help="cross-entropy weights ∝ class frequency^-x (0: plain cross-entropy)")
    p.add_argument("--agreement-folds", type=int, default=4,
                   help="held-out agreement: train without each fold, score on it (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="the taught model's name (default: the source's + '-taught')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder at --out")
    p.set_defaults(func=cmd_teach)

    p = sub.add_parser("push", help="publish a model folder to the Hugging Face Hub")
    p.add_argument("folder", type=Path)
    p.add_argument("repo_id", help="owner/name")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its "
                                                          "visibility)")
    p.add_argument("--branch", "--revision", dest="branch", default=None, help="branch to upload to (created if "
                                                                                "missing; default main)")
    p.add_argument("--token", default=None, help="Hub token (default: the login token or HF_TOKEN)")
    p.add_argument("--message", default=None, help="commit message")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("evaluate", help="edit-quality benchmark of the toy model against the renderer's truth",
                       add_help=False)
    p.set_defaults(func=cmd_evaluate, passes_options=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passes_options", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    long_running = getattr(args, "passes_options", False)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(message)s" if long_running else "%(message)s")
    if long_running:  # train and evaluate report their progress (but not every library's chatter)
        logging.getLogger("editgan").setLevel(logging.INFO)
    from editgan.engine.cpu_memory import keep_freed_memory
    from editgan.errors import EditGANError
    keep_freed_memory()  # before any worker thread starts (see cpu_memory)
    try:
        args.func(args)
    except (EditGANError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The ``editgan`` console command (installed by ``pip install -e .``)."""
    sys.exit(main())
