"""The benchmark and the command line, on the tiny test model (the real numbers come from `python -m editgan bench`)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_models import tiny_model_folder

from editgan import bench
from editgan.cli import main
from editgan.engine.model import EditGANModel


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("tiny"))


def test_bench_reports_every_measurement(folder):
    model = EditGANModel.from_folder(folder, device="cpu")
    result = bench.bench_model("embedded", model, repeats=2, full=True, memory_members=None)
    for key in ("generator_forward_ms", "generator_forward_backward_ms", "edit_step_ms", "edit_step_with_lpips_ms",
                "edit_100_steps_s", "vector_apply_ms", "refine_30_steps_s", "edit_step_overhead_x"):
        assert result[key] > 0, key
    memory = result["segmenter_memory"]
    assert memory["factorized"]["logits_shape"] == memory["naive"]["logits_shape"] == [1, 2, 32, 32]
    assert memory["naive"]["peak_MB"] >= 0 and memory["members"] == 2


def test_picture_first_rows(tmp_path):
    model = EditGANModel.from_folder(tiny_model_folder(tmp_path / "boxed", with_encoder=False,
                                                       image_box=(8, 0, 16, 32)), device="cpu")
    rows = bench.picture_first(model, steps=3)
    assert rows["image_box"] == [8, 0, 16, 32]
    assert 0 <= rows["sample_to_picture_s"] <= rows["sample_to_label_map_s"]
    assert 0 <= rows["slider_to_picture_s"] <= rows["slider_to_label_map_s"]
    for name in ("edit_studio", "edit_before"):
        edit = rows[name]
        assert edit["steps"] == 3 and edit["step_s"] >= 0
        assert edit["after_last_step_to_picture_s"] <= edit["after_last_step_to_label_map_s"]
        assert edit["overhead_s"] == pytest.approx(edit["before_first_step_s"] + edit["after_last_step_to_label_map_s"],
                                                   abs=0.02)


def test_unknown_bench_model_is_an_error():
    with pytest.raises(ValueError, match="unknown benchmark model"):
        bench.run(["random-7"], progress=lambda s: None)


def test_cli_sample_edit_apply_embed(folder, tmp_path, capsys):
    assert main(["sample", "--model", str(folder), "--seed", "3", "--out", str(tmp_path / "s")]) == 0
    latent = tmp_path / "s" / "wplus.npy"
    labels = np.asarray(Image.open(tmp_path / "s" / "labels.png"))  # a palette PNG of class ids
    wanted = labels.copy()
    wanted[2:12, 2:12] = 1 - wanted[2:12, 2:12]
    np.save(tmp_path / "wanted.npy", wanted)
    assert main(["edit", "--model", str(folder), str(latent), str(tmp_path / "wanted.npy"), "--steps", "3",
                 "--name", "flip", "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "flip.safetensors").is_file() and (tmp_path / "e" / "image.png").is_file()
    assert main(["apply", "--model", str(folder), str(latent), str(tmp_path / "e" / "flip.safetensors"),
                 "--out", str(tmp_path / "a")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "a" / "wplus.npy"), np.load(tmp_path / "e" / "wplus.npy"),
                               atol=1e-5)
    assert main(["apply", "--model", str(folder), str(latent), "redder", "--refine", "2",
                 "--out", str(tmp_path / "p")]) == 0
    Image.open(tmp_path / "s" / "image.png").save(tmp_path / "photo.jpg")
    assert main(["embed", "--model", str(folder), str(tmp_path / "photo.jpg"), "--steps", "2",
                 "--out", str(tmp_path / "m")]) == 0
    assert np.load(tmp_path / "m" / "wplus.npy").shape == np.load(latent).shape


def test_cli_errors_are_one_line(folder, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["embed", "--model", str(folder), str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "not a readable image" in err
    assert main(["sample", "--model", "nobody/nothing-here"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["sample", "--model", str(folder), "--out", str(tmp_path / "s")]) == 0
    Image.new("RGB", (40, 32)).save(tmp_path / "wide.png")
    assert main(["edit", "--model", str(folder), str(tmp_path / "s" / "wplus.npy"), str(tmp_path / "wide.png")]) == 2
    err = capsys.readouterr().err
    assert "the label map is 40×32; this model's maps are 32×32" in err and "Traceback" not in err


def test_the_cuda_rows_run_on_the_cpu_too(folder):
    """What `bench --device cuda` adds, exercised here on the CPU: the dense map against the banded one, and the
    switch rows, where a switch that cannot run says so in its row."""
    import torch

    from editgan.engine import editing
    from editgan.engine.acceleration import SpeedOptions
    from editgan.engine.labels import region_of_interest

    model = EditGANModel.from_folder(folder, device="cpu")
    g, seg = model.generator, model.segmenter
    w = model.mean_wplus.clone()
    full = bench.full_label_map(g, seg, w, model.device, repeats=1, banded=True)
    assert full["dense_ms"] > 0 and full["banded_ms"] > 0 and full["dense_vs_banded_max_abs_diff"] < 1e-4
    assert full["dense_bands"] == 1 and full["dense_member_groups"] == 1
    image, labels = editing.render(g, seg, w)
    painted, target = bench._painted_disc(model, labels[0], 0.1)
    roi = region_of_interest(labels[0], target, painted, [], 3)
    rows = bench.speed_variants(model, w, target, roi, image, torch.randn_like(w[0]) * 0.1,
                                {"eager": SpeedOptions(), "cuda_graph": SpeedOptions("cuda_graph")},
                                edit_steps=6, refine_steps=2)
    for row in rows.values():
        assert "error" not in row, row
        assert row["edit_s"] > 0 and row["edit_step_ms"] > 0 and row["refine_s"] > 0 and row["edit_steps"] == 6
    assert rows["eager"]["vector_apply_ms"] > 0 and "log" not in rows["eager"]
    assert rows["cuda_graph"]["edit_first_loss"] == rows["eager"]["edit_first_loss"]
    assert any("running the optimization step eagerly" in m for m in rows["cuda_graph"]["log"])


def test_the_1024_px_model_is_measured_on_cuda_only():
    report = bench.run(["random-1024"], device="cpu", progress=lambda s: None)
    assert "CUDA only" in report["models"]["random-1024"]["skipped"]
