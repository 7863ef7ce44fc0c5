"""The toy model's build pipeline end to end on a tiny untrained generator: every stage runs and writes
the checkpoint layout, and the evaluation reports every metric. (Quality is tested on the real embedded model.)"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from editgan.engine.model import EditGANModel
from editgan.toy import build_model, evaluate, faces
from editgan.toy.train_generator import (
    GeneratorRecipe,
    export_generator,
    grow_generator,
    load_compact_adversary,
    load_compact_checkpoint,
    train,
)

TINY = dict(size=16, style_dim=32, n_mlp=1, channels={4: 16, 8: 16, 16: 8}, batch=4, d_warmup=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    recipe = GeneratorRecipe(size=16, style_dim=32, n_mlp=1, channels={4: 16, 8: 16, 16: 8})
    torch.manual_seed(0)
    export_generator(folder, recipe.generator(), recipe, step=0, seconds=0)
    build_model.stage_encoder(folder, minutes=0.01)
    build_model.stage_segmenter(folder, samples=3, epochs=1, embed_steps=5)
    build_model.stage_vectors(folder, steps=2, examples=1)
    return folder


def test_every_stage_writes_its_part(built):
    config = json.loads((built / "config.json").read_text())
    assert config["name"] == "toy-faces" and len(config["classes"]) == 10
    assert config["segmenter"]["n_members"] == build_model.SEGMENTER.n_members and config["encoder"]
    assert [p["name"] for p in config["presets"]] == list(build_model.PRESETS)
    model = EditGANModel.from_folder(built)
    assert set(model.presets) == set(build_model.PRESETS) and model.encoder is not None
    assert model.presets["bigger_eyes"].classes == [4, 5, 6]  # eye white, iris, pupil


def test_vectors_stage_keeps_the_candidate_that_transfers_best(built, monkeypatch):
    scores = iter([0.4, 0.7, 0.5] * len(build_model.PRESETS))  # the second candidate of each preset is best
    kept = []
    real_score = build_model.transfer_score

    def scored(model, vector, validation, refine_steps):
        assert len(validation) == 1 and refine_steps == 30
        real_score(model, vector, validation, 1)  # the real scoring runs (shortened), its value is replaced
        kept.append(vector.delta.copy())
        return next(scores)
    monkeypatch.setattr(build_model, "transfer_score", scored)
    build_model.stage_vectors(built, steps=2, examples=1, candidates=3, validation_faces=1)
    chosen = json.loads((built / "config.json").read_text())["extra"]["vectors"]["chosen"]
    assert chosen["bigger_eyes"]["validation_miou"] == 0.7 and len(chosen["bigger_eyes"]["example_seeds"]) == 1
    saved = EditGANModel.from_folder(built).presets["bigger_eyes"].delta
    np.testing.assert_allclose(saved, kept[1], atol=1e-6)
    assert not np.allclose(kept[0], kept[1])  # candidates come from different example faces
    assert "of 3 such vectors from different example faces" in build_model.stage_card(built, None, None).read_text()


def test_segmenter_learns_from_renders_the_generator_reproduces(built):
    """Its labelled samples are renders embedded like photos: latents whose pictures resemble the render, paired
    with the renderer's exact label map."""
    model = EditGANModel.from_folder(built)
    seeds = [build_model.ANNOTATION_SEED, build_model.ANNOTATION_SEED + 1]
    wplus, labels = build_model.embedded_renders(model, seeds, steps=20)
    assert wplus.shape == (2, model.generator.n_latent, model.style_dim)
    for k, seed in enumerate(seeds):
        render, true_labels = faces.render(faces.sample_params(seed), model.generator.size)
        np.testing.assert_array_equal(labels[k], true_labels)
        target = np.asarray(render, dtype=np.float32)
        embedded_error = np.abs(model.render(wplus[k].numpy()).image.astype(np.float32) - target).mean()
        average_face_error = np.abs(model.render(model.mean_wplus[0].numpy()).image.astype(np.float32)
                                    - target).mean()
        assert embedded_error < average_face_error

    record = json.loads((built / "config.json").read_text())["extra"]["segmenter_training"]
    assert record["labelled"] == "embedded renders" and record["embed_steps"] == 5 and record["encoder_start"]
    assert "renders (few-shot), each embedded like a photo (encoder guess + 5 optimization steps)" in \
        build_model.stage_card(built, None, None).read_text()


def test_presets_can_be_validated_on_faces_embedded_like_photos(built):
    """What a preset meets in use: a render embedded like a photo, with the true edit painted over its map."""
    model = EditGANModel.from_folder(built)
    seed, wplus, labels, wanted, painted = next(build_model._example_edits(model, "close_mouth", 3000, embed_steps=3))
    params = faces.sample_params(seed)
    photo = model.embed(faces.render(params, model.generator.size)[0], steps=3)
    np.testing.assert_allclose(wplus, photo.wplus, atol=1e-5)
    np.testing.assert_array_equal(labels, photo.labels)
    true_edited = faces.render(faces.apply_edit(params, "close_mouth"), model.generator.size)[1]
    np.testing.assert_array_equal(painted, true_edited != labels)
    np.testing.assert_array_equal(wanted[painted], true_edited[painted])


def test_preset_examples_are_painted_only_where_the_edit_changes_the_face(built):
    """An example's vector should carry the edit, not corrections of that face's own segmentation errors."""
    model = EditGANModel.from_folder(built)
    seed, _, labels, wanted, painted = next(build_model._example_edits(model, "bigger_eyes", 2000,
                                                                      only_the_change=True))
    params = faces.sample_params(seed)
    before = faces.render(params, model.generator.size)[1]
    after = faces.render(faces.apply_edit(params, "bigger_eyes"), model.generator.size)[1]
    np.testing.assert_array_equal(painted, after != before)
    np.testing.assert_array_equal(wanted[painted], after[painted])
    np.testing.assert_array_equal(wanted[~painted], labels[~painted])  # the rest of the face's map as predicted
    assert (after != labels).sum() > painted.sum()  # the untrained branch's errors are left unpainted
    record = json.loads((built / "config.json").read_text())["extra"]["vectors"]
    assert record["example_painting"] == "the edit's change"
    assert "painting the renderer's true edited label map only where the edit changes the face's true map" in \
        build_model.stage_card(built, None, None).read_text()


def test_segmenter_stage_refuses_many_shot(built):
    with pytest.raises(ValueError, match="at most 32"):
        build_model.stage_segmenter(built, samples=33, epochs=1)


def test_evaluation_reports_all_metrics(built, tmp_path):
    model = EditGANModel.from_folder(built)
    report = evaluate.evaluate(model, n_faces=1, embed_steps=2, edit_steps=2, refine_steps=2,
                               edits=["bigger_eyes", "close_mouth", "open_mouth"], grid_path=tmp_path / "grid.png")
    assert set(report["embedding"]) == {"psnr", "miou", "class_iou"}
    assert {"background", "skin"} <= set(report["embedding"]["class_iou"])  # every face has them
    assert all(0 <= iou <= 1 for iou in report["embedding"]["class_iou"].values())
    for method in ("mask", "vector", "vector_refined", "truth_embedded"):
        assert set(report[method]) == {"miou_roi", "psnr_outside_roi", "psnr_vs_truth"}
    assert {"embed", "edit", "vector", "refine"} <= set(report["timings_s"])
    assert (tmp_path / "grid.png").is_file()


def test_evaluation_of_the_embedding_only(built, tmp_path):
    """``--edits none``: the label-map mIoU of embedded photos alone, e.g. to compare two segmentation branches."""
    evaluate.main(["--model", str(built), "--faces", "1", "--embed-steps", "2", "--edits", "none",
                   "--json", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert 0 <= report["embedding"]["miou"] <= 1 and "mask" not in report and not report["per_edit"]
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(built), "--edits", "wider_nose"])


def test_evaluation_under_bf16_autocast_says_so(built, tmp_path, monkeypatch):
    """``--bf16``: every optimization's forward runs under bf16 autocast, so that its cost in quality is measured."""
    from editgan.engine import acceleration

    wrapped = []
    autocast_loss = acceleration.autocast_loss
    monkeypatch.setattr(acceleration, "autocast_loss", lambda *a, **k: wrapped.append(1) or autocast_loss(*a, **k))
    for flags, name in (([], "fp32.json"), (["--bf16"], "bf16.json")):
        evaluate.main(["--model", str(built), "--faces", "1", "--embed-steps", "2", "--edits", "none", *flags,
                       "--json", str(tmp_path / name)])
        assert len(wrapped) == (1 if flags else 0)  # the one embedding of the one face
    fp32, bf16 = (json.loads((tmp_path / name).read_text()) for name in ("fp32.json", "bf16.json"))
    assert fp32["speed"]["bf16"] is False and bf16["speed"]["bf16"] is True
    assert 0 <= bf16["embedding"]["miou"] <= 1


def test_metrics():
    a = np.zeros((4, 4), int)
    b = a.copy()
    b[0, 0] = 1
    assert evaluate.miou(a, a) == 1.0
    assert evaluate.miou(b, a) == pytest.approx((15 / 16 + 0) / 2)
    assert evaluate.class_ious(b, a) == {0: pytest.approx(15 / 16), 1: 0.0}
    img = np.zeros((4, 4, 3), np.uint8)
    assert evaluate.psnr(img, img) == 99.0
    assert evaluate.psnr(img, img + 1) == pytest.approx(20 * np.log10(255), rel=1e-6)


def test_model_card_tells_training_and_scores(built, tmp_path):
    model = EditGANModel.from_folder(built)
    report = evaluate.evaluate(model, n_faces=1, embed_steps=1, edit_steps=1, refine_steps=1, edits=["close_mouth"])
    (tmp_path / "eval.json").write_text(json.dumps(report))
    card = build_model.stage_card(built, tmp_path / "eval.json", None).read_text()
    assert card.startswith("---") and "## How it was trained" in card and "## Edit quality" in card
    assert "PSNR outside ROI" in card and "| eye_white |" in card and "Embedding IoU by class: background" in card
    assert "| ceiling: the true edited picture, embedded |" in card and "| close_mouth |" in card
    assert "of the ceiling's" in card
    assert 0 < report["roi_fraction"] <= 1 and f"it covers {report['roi_fraction']:.0%} of the picture" in card


def test_model_card_says_when_the_adversarial_term_was_on(tmp_path):
    recipe = GeneratorRecipe(**TINY)
    export_generator(tmp_path, recipe.generator(), recipe, step=120, seconds=60,
                     history={"adversarial_from_step": 100})
    build_model.stage_segmenter(tmp_path, samples=2, epochs=1, embed_steps=2)
    card = build_model.stage_card(tmp_path, None, None).read_text()
    assert "from step 100 on, plus 0.01 × the non-saturating adversarial loss" in card
    assert "R1, γ 0.5" in card

    plain = GeneratorRecipe(**{**TINY, "adv_weight": 0.0})
    export_generator(tmp_path, plain.generator(), plain, step=120, seconds=60)
    assert "adversarial" not in build_model.stage_card(tmp_path, None, None).read_text()


def test_a_rebuilt_card_keeps_its_hand_written_status(built):
    card = build_model.stage_card(built, None, None)
    card.write_text(card.read_text() + "## Status\n\nVersion 9: why the presets fall short.\n")
    rebuilt = build_model.stage_card(built, None, None).read_text()
    assert rebuilt.endswith("## Status\n\nVersion 9: why the presets fall short.\n")
    assert rebuilt.count("## Status") == 1 and "## How it was trained" in rebuilt


def test_cli_passes_stage_options_through(built, capsys):
    from editgan.cli import main
    assert main(["train", "card", "--folder", str(built)]) == 0
    assert "README.md" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sample", "--folder", str(built)])  # options only the pass-through commands accept


def test_generator_training_resumes_on_a_fresh_clone_from_the_compact_checkpoint(tmp_path, caplog):
    """The run folder is not in the repository; the compact checkpoint and the exported EMA weights are."""
    recipe = GeneratorRecipe(**TINY)
    tree, export = tmp_path / "checkpoints" / "g.safetensors", tmp_path / "model"
    train(tmp_path / "run", export, minutes=0.02, recipe=recipe, threads=1, tree_checkpoint=tree)
    saved = load_compact_checkpoint(tree, recipe)
    step = saved.step
    run_state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert step == run_state["step"] > 0
    assert len(saved.optimizer.state) == len(list(saved.g.parameters()))  # Adam's moments came back too
    for name, value in saved.g.state_dict().items():
        torch.testing.assert_close(value, run_state["g"][name], atol=2e-3, rtol=2e-3)  # fp16 storage
    for name, value in saved.g_ema.state_dict().items():  # and the EMA weights
        torch.testing.assert_close(value, run_state["g_ema"][name], atol=2e-3, rtol=2e-3)
    assert saved.history == run_state["history"] == {"adversarial_from_step": 0}

    adversary = load_compact_adversary(tree, recipe)  # the discriminator comes back too (fp16 weights)
    assert adversary.steps == run_state["d_steps"] > recipe.d_warmup
    for name, value in adversary.d.state_dict().items():
        torch.testing.assert_close(value, run_state["d"][name], atol=2e-3, rtol=2e-3)

    with caplog.at_level("INFO"):
        train(tmp_path / "fresh-clone-run", export, minutes=0.02, recipe=recipe, threads=1, tree_checkpoint=tree)
    assert f"resumed from {tree} at step {step}" in caplog.text
    assert "fresh discriminator" not in caplog.text.split(f"resumed from {tree}")[1]  # no second warm-up
    assert load_compact_checkpoint(tree, recipe).step > step


def test_generator_training_without_the_adversarial_term_has_no_discriminator(tmp_path):
    recipe = GeneratorRecipe(**{**TINY, "adv_weight": 0.0})
    tree = tmp_path / "g.safetensors"
    train(tmp_path / "run", None, minutes=0.01, recipe=recipe, threads=1, tree_checkpoint=tree)
    assert "d" not in torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert load_compact_adversary(tree, recipe) is None


def test_a_fresh_discriminator_trains_alone_before_the_generator_moves(tmp_path):
    recipe = GeneratorRecipe(**{**TINY, "d_warmup": 10_000})
    train(tmp_path / "run", None, minutes=0.05, recipe=recipe, threads=1)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 0 and state["d_steps"] > 0


def test_encoder_stage_continues_from_the_encoder_the_folder_has(built, caplog):
    before = json.loads((built / "config.json").read_text())["extra"]["encoder_training"]["steps"]
    with caplog.at_level("INFO"):
        build_model.stage_encoder(built, minutes=0.01)
    assert "encoder: continuing from" in caplog.text
    assert json.loads((built / "config.json").read_text())["extra"]["encoder_training"]["steps"] > before


def test_interrupted_generator_training_keeps_what_it_trained(tmp_path, monkeypatch):
    from editgan.toy import train_generator

    recipe = GeneratorRecipe(**TINY)
    real_loss, calls = train_generator.reconstruction_loss, []

    def loss_then_ctrl_c(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, in the middle of the third step
        return real_loss(*args)
    monkeypatch.setattr(train_generator, "reconstruction_loss", loss_then_ctrl_c)
    tree = tmp_path / "g.safetensors"
    train(tmp_path / "run", tmp_path / "model", minutes=10, recipe=recipe, threads=1, tree_checkpoint=tree)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    assert json.loads((tmp_path / "model" / "generator_training.json").read_text())["step"] == 2
    assert load_compact_checkpoint(tree, recipe).step == 2


def test_a_grown_generator_starts_as_the_smaller_ones_picture_upsampled():
    torch.manual_seed(0)
    small = GeneratorRecipe(**TINY).generator()
    grown = grow_generator(small, GeneratorRecipe(**{**TINY, "size": 32}))
    assert grown.size == 32 and grown.n_latent == small.n_latent + 2
    z = torch.randn(3, TINY["style_dim"])
    with torch.no_grad():
        upsampled = F.interpolate(small(z), scale_factor=2, mode="bilinear", align_corners=False)
        picture = grown(z)
    # StyleGAN2's [1, 3, 3, 1] upsampling is bilinear away from the border, where it pads with zeros
    torch.testing.assert_close(picture[..., 2:-2, 2:-2], upsampled[..., 2:-2, 2:-2], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="cannot grow"):
        grow_generator(small, GeneratorRecipe(**{**TINY, "size": 32, "style_dim": 16}))


def test_a_grown_run_trains_resumes_and_remembers_where_it_came_from(tmp_path, caplog):
    small_recipe = GeneratorRecipe(**TINY)  # trained with the adversarial term, from step 40 on
    small_folder = tmp_path / "small"
    export_generator(small_folder, small_recipe.generator(), small_recipe, step=50, seconds=30,
                     history={"adversarial_from_step": 40})
    recipe = GeneratorRecipe(**{**TINY, "size": 32, "adv_weight": 0.0})
    tree, export = tmp_path / "g.safetensors", tmp_path / "grown"
    train(tmp_path / "run", export, minutes=0.02, recipe=recipe, threads=1, tree_checkpoint=tree,
          grow_from=small_folder)
    record = json.loads((export / "generator_training.json").read_text())
    assert record["generator"]["size"] == 32 and record["step"] > 50  # the small run's steps count on
    assert record["grown_from"]["size"] == 16 and record["grown_from"]["step"] == 50
    assert record["grown_from"]["adversarial_from_step"] == 40
    build_model.stage_segmenter(export, samples=2, epochs=1, embed_steps=2)
    card = build_model.stage_card(export, None, None).read_text()
    assert "at 16 px; from step 40 on, plus 0.01 × the non-saturating" in card
    assert "; then grown to 32 px at step 50 (new blocks of widths 32: 16" in card
    assert card.count("adversarial") == 1  # the grown run trains without it

    shutil.rmtree(export)  # a fresh clone: only the compact checkpoint is in the repository
    caplog.clear()
    with caplog.at_level("INFO"):
        train(tmp_path / "fresh-clone-run", export, minutes=0.02, recipe=recipe, threads=1, tree_checkpoint=tree,
              grow_from=small_folder)
    assert f"resumed from {tree} at step {record['step']}" in caplog.text and "grew" not in caplog.text
    again = json.loads((export / "generator_training.json").read_text())
    assert again["step"] > record["step"] and again["grown_from"] == record["grown_from"]


def test_training_at_another_size_than_the_checkpoint_says_so(tmp_path):
    recipe = GeneratorRecipe(**{**TINY, "adv_weight": 0.0})
    tree = tmp_path / "g.safetensors"
    train(tmp_path / "run", None, minutes=0.01, recipe=recipe, threads=1, tree_checkpoint=tree)
    with pytest.raises(ValueError, match=r"g.safetensors \(16 px\).*--size"):
        train(tmp_path / "other-run", None, minutes=0.01, recipe=GeneratorRecipe(**{**recipe.__dict__, "size": 32}),
              threads=1, tree_checkpoint=tree)
