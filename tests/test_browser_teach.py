"""The Teach tab in a real browser, on a tiny generator-only model: template classes, two samples painted with the
brush and the fill tool, training, a mask edit in the Studio tab with the new branch, the edit saved as a preset,
the model folder saved and loaded back.

Needs Debian's Chromium and the Playwright package, like tests/test_browser.py; skipped without them. Screenshots
go to test-artifacts/.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    LAUNCH_ARGS,
    canvas_to_screen,
    pick_color,
    playwright_sync_api,
    shown_image,
    wait_until_updated,
)

sync_api = playwright_sync_api()

from tiny_models import SIZE, running_studio, tiny_generator_only_folder  # noqa: E402

from editgan.app.views import canvas_scale  # noqa: E402
from editgan.engine.model import EditGANModel  # noqa: E402
from editgan.teach.templates import get_template  # noqa: E402

K = canvas_scale(SIZE, SIZE)
TIMEOUT_MS = 90_000
BIRD = get_template("bird")
HEAD, WING = BIRD.palette[1], BIRD.palette[8]


def wait_for_text(page, elem_id: str, text: str) -> None:
    page.wait_for_function("([id, t]) => (document.querySelector('#' + id)?.innerText || '').includes(t)",
                           arg=[elem_id, text], polling=100)





def strokes(page, editor: str, rows: range, x0: int, x1: int) -> None:
    """Horizontal brush strokes over label rows ``rows`` (every other row: the brush is two label pixels wide)."""
    to_screen = canvas_to_screen(page, SIZE * K, editor)
    for row in rows[::2]:
        y = (row + 1) * K
        page.mouse.move(*to_screen(x0 * K, y))
        page.mouse.down()
        page.mouse.move(*to_screen(x1 * K, y), steps=4)
        page.mouse.up()


def click_image(page, elem_id: str, fx: float, fy: float) -> None:
    box = page.locator(f"#{elem_id} img").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def set_number(page, elem_id: str, value: int) -> None:
    field = page.locator(f"#{elem_id} input[type=number]")
    field.fill(str(value))
    field.press("Enter")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return tiny_generator_only_folder(tmp_path_factory.mktemp("gen") / "tiny-gen")


@pytest.fixture(scope="module")
def page(model_folder):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_studio(model_folder) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        wait_for_text(page, "status", "Step 1 of 1")
        yield page
        browser.close()


def annotate(page, seed: int, fill_at: tuple[float, float]) -> None:
    """Draw sample ``seed``, fill a region of the picture with 'wing', paint a band 'head' with the brush, keep."""
    page.locator("#teach-seed input").fill(str(seed))
    page.locator("#teach-sample").click()
    wait_for_text(page, "teach-status", f"Sample {seed} ")
    src, _ = shown_image(page, "teach-labels")
    page.locator("#teach-brush-class input").click()
    page.get_by_role("option", name="wing", exact=True).click()
    wait_until_updated(page, "teach-editor")  # the brush's new colour reaches the canvas before the fill's map
    click_image(page, "teach-picture", *fill_at)
    wait_for_text(page, "teach-status", "Filled")
    page.wait_for_function("([id, old]) => document.querySelector(`#${id} img`)?.getAttribute('src') !== old",
                           arg=["teach-labels", src], polling=100)
    wait_until_updated(page, "teach-editor")
    pick_color(page, HEAD, "teach-editor")
    strokes(page, "teach-editor", range(2, 12), 2, SIZE - 3)
    page.screenshot(path=str(ARTIFACTS / f"teach-0-painted-{seed}.png"), full_page=True)
    src, _ = shown_image(page, "teach-labels")
    page.locator("#teach-keep").click()
    wait_for_text(page, "teach-status", f"Kept sample {seed}")
    page.wait_for_function("([id, old]) => document.querySelector(`#${id} img`)?.getAttribute('src') !== old",
                           arg=["teach-labels", src], polling=100)
    labels = shown_image(page, "teach-labels")[1][K // 2::K, K // 2::K]
    assert (labels == HEAD).all(-1)[3:11, 4:SIZE - 5].mean() > 0.5, "the brush band should be 'head'"
    assert (labels == WING).all(-1).any(), "the fill should make some 'wing'"


def test_teach_a_generator_only_model_edit_save_a_preset_and_the_folder(page, tmp_path):
    page.get_by_role("tab", name="Teach").click()
    page.locator("#teach-template input").click()
    page.get_by_role("option", name="bird").click()
    page.locator("#teach-use-template").click()
    page.wait_for_function("() => document.querySelector('#teach-classes textarea').value.includes('beak')",
                           polling=100)
    page.locator("#teach-apply-classes").click()
    wait_for_text(page, "teach-status", "11 classes set")

    annotate(page, 1, (0.2, 0.8))
    annotate(page, 2, (0.7, 0.7))
    wait_for_text(page, "teach-samples", "2 annotated samples")
    page.screenshot(path=str(ARTIFACTS / "teach-1-annotated.png"), full_page=True)

    set_number(page, "teach-members", 2)
    set_number(page, "teach-epochs", 5)
    page.locator("#teach-train").click()
    wait_for_text(page, "teach-status", "Done.")
    assert "held-out agreement" in page.locator("#teach-report").inner_text()
    page.screenshot(path=str(ARTIFACTS / "teach-2-trained.png"), full_page=True)

    # the Studio tab edits with the new branch
    page.get_by_role("tab", name="Studio").click()
    wait_for_text(page, "legend", "wing")
    picture_src = page.locator("#picture img").first.get_attribute("src")
    wait_until_updated(page, "editor")
    pick_color(page, HEAD)
    strokes(page, "editor", range(4, 28), 4, SIZE - 5)
    page.locator("#edit").click()
    page.wait_for_function("() => /Edit (done|found nothing)/.test(document.querySelector('#status')?.innerText)",
                           polling=100)
    assert "Edit done" in page.locator("#status").inner_text(), page.locator("#status").inner_text()
    assert page.locator("#picture img").first.get_attribute("src") != picture_src

    # ... saved as a preset of the taught model: a slider at once
    page.locator("#vector-name input, #vector-name textarea").first.fill("more_head")
    page.locator("#preset-panel .label-wrap").first.click()
    page.locator("#preset-display input, #preset-display textarea").first.fill("More head")
    page.locator("#save-preset").click()
    wait_for_text(page, "status", "Saved the current edit as preset")
    wait_for_text(page, "slider-0", "More head")
    page.screenshot(path=str(ARTIFACTS / "teach-3-preset.png"), full_page=True)

    # save the model folder; the Studio loads it back from disk
    out = tmp_path / "taught-bird"
    page.get_by_role("tab", name="Teach").click()
    page.locator("#teach-out input, #teach-out textarea").first.fill(str(out))
    page.locator("#teach-save").click()
    wait_for_text(page, "teach-status", "loaded it back")
    page.get_by_role("tab", name="Studio").click()
    wait_for_text(page, "model-info", "taught-bird")
    wait_for_text(page, "slider-0", "More head")
    page.screenshot(path=str(ARTIFACTS / "teach-4-saved.png"), full_page=True)
    reloaded = EditGANModel.from_folder(out, device="cpu")
    assert reloaded.has_segmenter and reloaded.config.class_names == BIRD.class_names
    assert list(reloaded.presets) == ["more_head"]
    assert "2 annotated samples" in (out / "README.md").read_text()
