"""The Teach tab's components: what the page shows, in the order a visitor works (classes, annotation, samples,
import and export, training, saving), and the limits of a teaching run. No callbacks here: :mod:`.teach_tab` wires
them."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from editgan.app import teach_views, views
from editgan.app.components import EDITOR_HEIGHT, bounded_editor, brush_size
from editgan.app.teach_work import MAX_SAMPLES
from editgan.engine.model import EditGANModel
from editgan.teach.templates import template_names

LIMITS = {"members": (2, 10), "epochs": (1, 100), "samples": MAX_SAMPLES}
PUBLIC_LIMITS = {"members": (2, 4), "epochs": (1, 20), "samples": 32}
"""What one visitor of a public studio may ask of a teaching run."""
INTRO = """Teach this model a segmentation branch (or new classes): **1** set the classes, **2** draw samples and paint
their whole label maps (brush and eraser on the canvas; click the picture or the label map to fill a region with the
brush class), keep each one, **3** train. The Studio tab then edits with the new branch."""


@dataclass
class TeachTab:
    state: gr.State
    template: gr.Dropdown
    use_template: gr.Button
    model_classes: gr.Button
    classes: gr.Textbox
    class_name: gr.Textbox
    class_color: gr.ColorPicker
    put_class: gr.Button
    apply_classes: gr.Button
    legend: gr.HTML
    seed: gr.Number
    truncation: gr.Slider
    sample: gr.Button
    next_seed: gr.Button
    brush_class: gr.Dropdown
    tolerance: gr.Slider
    editor: gr.ImageEditor
    picture: gr.Image
    labels: gr.Image
    uncertainty: gr.Image
    keep: gr.Button
    samples: gr.Markdown
    sample_key: gr.Dropdown
    open: gr.Button
    delete: gr.Button
    upload: gr.File
    export: gr.Button
    download: gr.File
    members: gr.Slider
    epochs: gr.Slider
    train: gr.Button
    cancel: gr.Button
    preview: gr.Image
    report: gr.Markdown
    out_folder: gr.Textbox
    overwrite: gr.Checkbox
    save: gr.Button
    saved: gr.File
    status: gr.Markdown


def teach_layout(engine: EditGANModel | None, public: bool, state: gr.State) -> TeachTab:
    """The tab's components, inside an open ``gr.Tab``; ``state`` holds the visitor's TeachWork."""
    limits = PUBLIC_LIMITS if public else LIMITS
    gr.Markdown(INTRO)
    status = gr.Markdown("", elem_id="teach-status")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            gr.Markdown("### 1 · Classes")
            template = gr.Dropdown(template_names(), value=None, label="Template", elem_id="teach-template")
            with gr.Row():
                use_template = gr.Button("Use template", elem_id="teach-use-template")
                model_classes = gr.Button("This model's classes", elem_id="teach-model-classes")
            classes = gr.Textbox(label="Classes: one a line, 'name #rrggbb', the background first", lines=8,
                                 max_lines=20, elem_id="teach-classes")
            with gr.Row(equal_height=True):
                class_name = gr.Textbox(label="Class", placeholder="e.g. hair", max_length=100, scale=2,
                                        elem_id="teach-class-name")
                class_color = gr.ColorPicker("#ff0000", label="Colour", scale=1, elem_id="teach-class-color")
                put_class = gr.Button("Add or recolour", scale=1, elem_id="teach-put-class")
            apply_classes = gr.Button("Set these classes", variant="primary", elem_id="teach-apply-classes")
            legend = gr.HTML("", elem_id="teach-legend")
            gr.Markdown("### 2 · Annotate")
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=2**31 - 1, elem_id="teach-seed")
            truncation = gr.Slider(0, 1, value=engine.config.truncation if engine else 0.7, step=0.05,
                                   label="Truncation", elem_id="teach-truncation")
            with gr.Row():
                sample = gr.Button("Sample", variant="primary", elem_id="teach-sample")
                next_seed = gr.Button("Next seed", elem_id="teach-next-seed")
            brush_class = gr.Dropdown([], label="Brush class (brush and fill)", elem_id="teach-brush-class")
            tolerance = gr.Slider(0, 255, value=24, step=1, label="Fill tolerance (picture colours)",
                                  elem_id="teach-tolerance")
        with gr.Column(scale=3):
            editor = bounded_editor(label="Label map over the picture (enlarged): paint every part", type="numpy",
                                    image_mode="RGBA", format="png", sources=[], transforms=[], layers=False,
                                    brush=gr.Brush(colors=["#ff0000"], color_mode="fixed",
                                                   default_size=brush_size(engine)),
                                    eraser=gr.Eraser(default_size=brush_size(engine)),
                                    canvas_size=(views.CANVAS_SIDE, views.CANVAS_SIDE), interactive=True,
                                    height=EDITOR_HEIGHT, elem_id="teach-editor")
            with gr.Row():
                picture = gr.Image(label="Picture: click to fill a region of alike colour", interactive=False,
                                   format="png", elem_id="teach-picture")
                labels = gr.Image(label="Label map: click to fill a region of one class", interactive=False,
                                  format="png", elem_id="teach-labels")
                uncertainty = gr.Image(label="Where the branch is unsure (bright)", interactive=False, format="png",
                                       elem_id="teach-uncertainty")
            keep = gr.Button("Keep this annotation", variant="primary", elem_id="teach-keep")
    with gr.Row():
        with gr.Column():
            samples = gr.Markdown(teach_views.samples_markdown([], []), elem_id="teach-samples")
            with gr.Row():
                sample_key = gr.Dropdown([], label="Annotated sample", elem_id="teach-sample-key")
                open_ = gr.Button("Open", elem_id="teach-open")
                delete = gr.Button("Delete", variant="stop", elem_id="teach-delete")
            gr.Markdown("### Import / export\nA zip (or the files) of an annotation folder: `classes.json` and "
                        "palette PNG label maps `<seed>.png` (or `<name>.png` beside `<name>.npy`, its w+).")
            upload = gr.File(label="Import annotations", file_count="multiple", file_types=[".zip", ".png", ".npy",
                                                                                            ".json"],
                             type="filepath", height=120, elem_id="teach-upload")
            export = gr.Button("Export annotations (zip)", elem_id="teach-export")
            download = gr.File(label="Annotations", interactive=False, height=90, elem_id="teach-download")
        with gr.Column():
            gr.Markdown("### 3 · Train")
            members = gr.Slider(*limits["members"], value=min(4, limits["members"][1]), step=1,
                                label="Ensemble size (classifiers)", elem_id="teach-members")
            epochs = gr.Slider(*limits["epochs"], value=10, step=1, label="Epochs", elem_id="teach-epochs")
            with gr.Row():
                train = gr.Button("Train", variant="primary", elem_id="teach-train")
                cancel = gr.Button("Cancel", variant="stop", elem_id="teach-cancel")
            preview = gr.Image(label="New samples with the taught branch", interactive=False, format="png",
                               elem_id="teach-preview")
            report = gr.Markdown("", elem_id="teach-report")
            gr.Markdown("### Save the model folder")
            if public:
                gr.Markdown("This public studio keeps your taught model only for your session: save it as a zip "
                            "(config with classes and palette, weights, vectors, model card).")
            out_folder = gr.Textbox(label="Model folder to write", placeholder="e.g. models/my-model",
                                    visible=not public, elem_id="teach-out")
            overwrite = gr.Checkbox(False, label="Replace an existing model folder", visible=not public,
                                    elem_id="teach-overwrite")
            save = gr.Button("Download the model folder (zip)" if public else "Save the model folder and load it",
                             elem_id="teach-save")
            saved = gr.File(label="Model folder (zip)", interactive=False, height=90, visible=public,
                            elem_id="teach-saved")
    return TeachTab(state, template, use_template, model_classes, classes, class_name, class_color, put_class,
                    apply_classes, legend, seed, truncation, sample, next_seed, brush_class, tolerance, editor,
                    picture, labels, uncertainty, keep, samples, sample_key, open_, delete, upload, export, download,
                    members, epochs, train, cancel, preview, report, out_folder, overwrite, save, saved, status)
