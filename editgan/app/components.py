"""The studio's layout: one builder per panel, each returning a typed object that holds the panel's components.

Builders only create components (with the loaded model's values where it has one); :mod:`editgan.app.demo` wires
their events to :class:`editgan.app.studio.Studio`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import PIL.Image

from editgan.app import views
from editgan.app.session import MAX_HISTORY, MAX_SLIDERS
from editgan.colors import hex_color
from editgan.engine.images import PHOTO_FORMATS
from editgan.engine.model import EditGANModel

EDITOR_HEIGHT = 640
EXAMPLE_SEEDS = (1, 2, 3, 4)
FIRST_SEED = 1
DEFAULT_EDIT_STEPS = 100
EDIT_STEPS_RANGE = (10, 500)
DEFAULT_EMBED_STEPS = 100
REFINE_CHOICES = (10, 30)
INTRO = f"""# EditGAN Studio
Draw a sample (or embed a photo), **paint the label map** with a class color and press **Edit**: the picture changes
to match the paint, and nothing else moves. Preset sliders apply learned edits; save your own edits as vectors and
apply them to other pictures. Undo, redo and reset work over the last {MAX_HISTORY} steps."""


PAGE_CSS = """
/* pictures come at the model's size (64 px for the toy faces): enlarged here, each pixel a sharp square */
#picture .image-frame, #labels .image-frame, #blend .image-frame { width: 100%; height: 100%; }
#picture img, #labels img, #blend img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
#compare img { image-rendering: pixelated; }
/* the brush's palette: a thin ring, so that a white class stays visible on the white popup */
#editor menu.swatch button.color { box-shadow: inset 0 0 0 1px rgba(0, 0, 0, 0.45); }
"""
"""The page's own styles (given to ``launch``: in Gradio 6 a Blocks takes no css)."""


MAX_CANVAS_SIDE = 1024
"""The largest canvas the studio shows (a 1024-px model at scale 1): no editor image may be larger."""


BOUNDED = "editgan-bounded-layers"
"""The elem_class that marks an editor whose images are checked from their headers (see :func:`bounded_editor`)."""


MAX_PAINT_LAYERS = 4
"""The editors have one paint layer (``layers=False``); more are refused before any is decoded: a request could
name the same small upload thousands of times, each decoded to megabytes."""


def bounded_editor(**options) -> gr.ImageEditor:
    """``gr.ImageEditor`` whose images (background, layers, composite) are read from their headers and refused when
    larger than any canvas, before they are decoded: a 9000×9000 PNG layer is 0.3 MB on the wire and gigabytes
    decoded. A canvas with more than :data:`MAX_PAINT_LAYERS` layers is refused before its first one is read."""
    _install_header_check()
    return gr.ImageEditor(elem_classes=[BOUNDED], **options)


def _install_header_check() -> None:
    """Wrap ImageEditor's decoding once per process, for marked editors only.

    Not a subclass, nor a method set on the instance: Gradio writes a .pyi file beside any module that subclasses
    one of its components, and it rebuilds a component from its constructor arguments whenever an event updates it
    (an instance attribute would be lost; the elem_class is kept)."""
    decode, preprocess = gr.ImageEditor.convert_and_format_image, gr.ImageEditor.preprocess
    if getattr(decode, "editgan_checked", False):
        return

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is not None and BOUNDED in (self.elem_classes or []):
            check_layer_header(file)
        return decode(self, file, flatten_on_white)

    def counted_preprocess(self, payload):
        if payload is not None and BOUNDED in (self.elem_classes or []):
            check_layer_count(payload, self.blob_storage)
        return preprocess(self, payload)

    convert_and_format_image.editgan_checked = True
    gr.ImageEditor.convert_and_format_image = convert_and_format_image
    gr.ImageEditor.preprocess = counted_preprocess


def check_layer_count(payload, blobs: dict) -> None:
    """Refuse a canvas with more paint layers than :data:`MAX_PAINT_LAYERS`, its own or those uploaded beforehand
    under its id (Gradio keeps a canvas sent in parts in ``blobs``)."""
    cached = blobs.get(payload.id) if getattr(payload, "id", None) is not None else None
    layers = (cached if cached is not None else payload).layers or []
    if len(layers) > MAX_PAINT_LAYERS:
        raise gr.Error(f"a canvas with {len(layers)} paint layers: this editor has one; reload the page and paint "
                       f"again", print_exception=False)


def check_layer_header(file) -> None:
    """Refuse an editor image that is unreadable or larger than any canvas, from its header alone."""
    try:
        with PIL.Image.open(file.path if hasattr(file, "path") else io.BytesIO(file), formats=PHOTO_FORMATS) as header:
            width, height = header.size
    except (OSError, SyntaxError, ValueError):
        raise gr.Error("a paint layer is not a readable image: reload the page and paint again",
                       print_exception=False) from None
    if max(width, height) > MAX_CANVAS_SIDE:
        raise gr.Error(f"a paint layer of {width}×{height} is larger than any canvas here "
                       f"({MAX_CANVAS_SIDE}×{MAX_CANVAS_SIDE}): reload the page and paint again", print_exception=False)


def brush_size(engine: EditGANModel | None) -> int:
    """Canvas pixels: about 1/40 of the canvas's side and at least two label pixels, whatever the model's size (a
    512-px model is shown at scale 1, where two label pixels would be a 2-px brush)."""
    if engine is None:
        return 16
    height, width = engine.config.box[2:]
    k = views.canvas_scale(height, width)
    return max(2 * k, round(k * max(height, width) / 40))


def brush(engine: EditGANModel | None, color: str | None = None) -> gr.Brush:
    """A brush that offers exactly the class colors (``color`` first when given)."""
    palette = [hex_color(c) for c in engine.config.palette] if engine and engine.has_segmenter else ["#ff0000"]
    default = color if color in palette else palette[min(1, len(palette) - 1)]
    return gr.Brush(colors=palette, default_color=default, color_mode="fixed", default_size=brush_size(engine))


def eraser(engine: EditGANModel | None) -> gr.Eraser:
    return gr.Eraser(default_size=brush_size(engine))


@dataclass
class ModelBar:
    model: gr.Dropdown
    load: gr.Button
    info: gr.Markdown
    notice: gr.Markdown


def model_bar(engine: EditGANModel | None, default_model: str, choices: list[str], load_error: str,
              any_model: bool) -> ModelBar:
    """``any_model``: visitors may type any Hub id or folder (local use); otherwise they pick among ``choices``."""
    with gr.Row(equal_height=True):
        model = gr.Dropdown(choices, value=default_model, label="Model", allow_custom_value=any_model,
                            info="An embedded model, a Hub repo id (owner/name) or a local folder" if any_model
                            else "The models this studio offers", scale=3, elem_id="model")
        load = gr.Button("Load model", scale=1, elem_id="load-model")
        info = gr.Markdown(views.model_info(engine, default_model) if engine else f"**Model not loaded**: {load_error}",
                           elem_id="model-info")
    notice = gr.Markdown(views.model_notice(engine) if engine else "", elem_id="notice")
    return ModelBar(model, load, info, notice)


@dataclass
class SamplePanel:
    seed: gr.Number
    sample: gr.Button
    dice: gr.Button
    truncation: gr.Slider
    examples: gr.Dataset


def sample_panel(engine: EditGANModel | None) -> SamplePanel:
    seed = gr.Number(FIRST_SEED, label="Seed", precision=0, minimum=0, maximum=2**31 - 1, elem_id="seed")
    with gr.Row():
        sample = gr.Button("Sample", variant="primary", elem_id="sample")
        dice = gr.Button("Random seed", elem_id="random")
    truncation = gr.Slider(0, 1, value=engine.config.truncation if engine else 0.7, step=0.05, label="Truncation",
                           info="lower: closer to the average picture", elem_id="truncation")
    examples = gr.Dataset(components=[gr.Number(render=False)], samples=[[s] for s in EXAMPLE_SEEDS],
                          label="Example seeds", elem_id="seed-examples")
    return SamplePanel(seed, sample, dice, truncation, examples)


@dataclass
class PhotoPanel:
    upload: gr.File
    crop_preview: gr.Image
    crop_size: gr.Slider
    crop_x: gr.Slider
    crop_y: gr.Slider
    steps: gr.Slider
    embed: gr.Button
    examples: gr.Dataset


def photo_panel(example_photos: list[Path]) -> PhotoPanel:
    upload = gr.File(label="Upload a photo", file_types=["image"], type="filepath", elem_id="photo")
    preview = gr.Image(label="Square crop", interactive=False, format="png", height=260)
    size = gr.Slider(5, 100, value=100, step=1, label="Crop size (% of the shorter side)")
    with gr.Row():
        x = gr.Slider(0, 100, value=50, step=1, label="Horizontal position (%)")
        y = gr.Slider(0, 100, value=50, step=1, label="Vertical position (%)")
    steps = gr.Slider(10, 500, value=DEFAULT_EMBED_STEPS, step=10, label="Embedding steps")
    embed = gr.Button("Embed", variant="primary", elem_id="embed")
    examples = gr.Dataset(components=[gr.Image(render=False)], samples=[[str(p)] for p in example_photos],
                          label="Example photos", elem_id="photo-examples", visible=bool(example_photos))
    return PhotoPanel(upload, preview, size, x, y, steps, embed, examples)


@dataclass
class PicturePanel:
    picture: gr.Image
    labels: gr.Image
    blend: gr.Image
    status: gr.Markdown


def picture_panel(load_error: str) -> PicturePanel:
    with gr.Row():
        picture = gr.Image(label="Image", interactive=False, format="png", elem_id="picture")
        labels = gr.Image(label="Label map", interactive=False, format="png", elem_id="labels")
        blended = gr.Image(label="Blend", interactive=False, format="png", elem_id="blend")
    status = gr.Markdown(load_error and f"Could not load the model: {load_error}", elem_id="status")
    return PicturePanel(picture, labels, blended, status)


def class_choices(engine: EditGANModel | None) -> list[str]:
    return list(engine.config.class_names) if engine and engine.has_segmenter else []


def default_class(engine: EditGANModel | None) -> str | None:
    """The class the brush starts with: the first after the background."""
    names = class_choices(engine)
    return names[min(1, len(names) - 1)] if names else None


@dataclass
class PaintPanel:
    legend: gr.HTML
    """Class names beside their colors, just above the canvas (the brush's swatches have no names)."""
    brush_class: gr.Dropdown
    """Picks the brush's class by name: the brush takes its color."""
    editor: gr.ImageEditor
    steps: gr.Slider
    edit: gr.Button
    cancel: gr.Button
    cancel_reply: gr.Textbox
    """Hidden: Cancel's answer for API clients (the page shows it as a notice, never on the status line)."""


def paint_panel(engine: EditGANModel | None) -> PaintPanel:
    gr.Markdown("### Paint the label map\nPick a class (by name below, or its color in the brush's palette), paint "
                "where the picture should change, then press **Edit**. The eraser removes paint.")
    legend = gr.HTML(views.legend_html(engine) if engine else "", elem_id="legend")
    brush_class = gr.Dropdown(class_choices(engine), value=default_class(engine), label="Brush class",
                              interactive=bool(class_choices(engine)), elem_id="brush-class")
    editor = bounded_editor(label="Label map (enlarged)", type="numpy", image_mode="RGBA", format="png", sources=[],
                            transforms=[], layers=False, brush=brush(engine), eraser=eraser(engine),
                            canvas_size=(views.CANVAS_SIDE, views.CANVAS_SIDE), interactive=True,
                            height=EDITOR_HEIGHT, elem_id="editor")
    with gr.Row():
        steps = gr.Slider(*EDIT_STEPS_RANGE, value=DEFAULT_EDIT_STEPS, step=10, label="Edit steps",
                          elem_id="edit-steps")
        edit = gr.Button("Edit", variant="primary", elem_id="edit", interactive=bool(engine and engine.has_segmenter))
        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
    cancel_reply = gr.Textbox(visible=False, label="cancel")
    return PaintPanel(legend, brush_class, editor, steps, edit, cancel, cancel_reply)


@dataclass
class VectorPanel:
    sliders: list[gr.Slider]
    refine_steps: gr.Radio
    refine: gr.Button
    name: gr.Textbox
    save: gr.Button
    saved_file: gr.File
    upload: gr.File


def vector_panel(engine: EditGANModel | None) -> VectorPanel:
    gr.Markdown("### Presets and your vectors\nEach slider adds its vector, scaled, to the picture the sliders "
                "started from.")
    presets = list(engine.presets.values()) if engine else []
    sliders = []
    for i in range(MAX_SLIDERS):
        v = presets[i] if i < len(presets) else None
        sliders.append(gr.Slider(v.scale_range[0] if v else -2, v.scale_range[1] if v else 2, value=0, step=0.05,
                                 label=v.display_name if v else f"Vector {i + 1}",
                                 info=f"preset {v.name}" if v else None, visible=v is not None,
                                 elem_id=f"slider-{i}"))
    with gr.Row():
        refine_steps = gr.Radio(list(REFINE_CHOICES), value=REFINE_CHOICES[-1], label="Refine steps",
                                elem_id="refine-steps")
        refine = gr.Button("Refine", elem_id="refine")
    with gr.Row():
        name = gr.Textbox(label="Vector name", placeholder="letters, digits, _ - . (e.g. my_edit)",
                          elem_id="vector-name")
        save = gr.Button("Save edit as vector", elem_id="save-vector")
    saved_file = gr.File(label="Saved vector (.safetensors)", interactive=False, height=90, elem_id="vector-file")
    upload = gr.File(label="Upload a vector (.safetensors)", file_types=[".safetensors"], type="filepath", height=120,
                     elem_id="vector-upload")
    return VectorPanel(sliders, refine_steps, refine, name, save, saved_file, upload)


@dataclass
class PresetPanel:
    """Saves the current edit into the model's folder as a preset (the vector's name is the Vector name box)."""
    display_name: gr.Textbox
    scale_min: gr.Number
    scale_max: gr.Number
    refine_steps: gr.Number
    save: gr.Button


def preset_panel() -> PresetPanel:
    with gr.Accordion("Save as a preset of this model", open=False, elem_id="preset-panel"):
        gr.Markdown("Writes the current edit into the model's folder (`vectors/<name>.safetensors`, listed in its "
                    "config.json), named by **Vector name** above: it is a slider for everyone who loads the model.")
        display_name = gr.Textbox(label="Display name", placeholder="e.g. Bigger eyes", elem_id="preset-display")
        with gr.Row():
            scale_min = gr.Number(-2, label="Scale from", elem_id="preset-min")
            scale_max = gr.Number(2, label="Scale to", elem_id="preset-max")
            refine_steps = gr.Number(10, label="Refine steps", precision=0, minimum=0, maximum=500,
                                     elem_id="preset-refine")
        save = gr.Button("Save as a preset of this model", elem_id="save-preset")
    return PresetPanel(display_name, scale_min, scale_max, refine_steps, save)


@dataclass
class HistoryPanel:
    undo: gr.Button
    redo: gr.Button
    reset: gr.Button
    compare: gr.ImageSlider
    export: gr.Button
    downloads: gr.File


def history_panel() -> HistoryPanel:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                undo = gr.Button("↶ Undo", interactive=False, elem_id="undo")
                redo = gr.Button("↷ Redo", interactive=False, elem_id="redo")
                reset = gr.Button("Reset to the original", interactive=False, elem_id="reset")
            compare = gr.ImageSlider(label="Before / after", type="numpy", format="png", max_height=420,
                                     elem_id="compare")
        with gr.Column(scale=2):
            export = gr.Button("Prepare downloads", elem_id="export")
            downloads = gr.File(label="Image, label map, w+ latent", file_count="multiple", interactive=False,
                                height=140, elem_id="downloads")
    return HistoryPanel(undo, redo, reset, compare, export, downloads)


@dataclass
class Components:
    """Every component the callbacks read or update, by panel."""
    state: gr.State
    model: ModelBar
    sample: SamplePanel
    photo: PhotoPanel
    picture: PicturePanel
    paint: PaintPanel
    vectors: VectorPanel
    preset: PresetPanel
    history: HistoryPanel


def studio_layout(engine: EditGANModel | None, default_model: str, choices: list[str], load_error: str,
                  example_photos: list[Path], any_model: bool, state: gr.State) -> Components:
    """The whole page, inside an open ``gr.Blocks``; ``state`` is the visitor's session."""
    gr.Markdown(INTRO)
    model = model_bar(engine, default_model, choices, load_error, any_model)
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Tab("Sample"):
                sample = sample_panel(engine)
            with gr.Tab("Photo"):
                photo = photo_panel(example_photos)
        with gr.Column(scale=3):
            picture = picture_panel(load_error)
    with gr.Row():
        with gr.Column(scale=3):
            paint = paint_panel(engine)
        with gr.Column(scale=2):
            vectors = vector_panel(engine)
            preset = preset_panel()
    history = history_panel()
    return Components(state, model, sample, photo, picture, paint, vectors, preset, history)
