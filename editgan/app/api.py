"""The public API: a few typed, documented endpoints beside the UI's events, for ``gradio_client`` and HTTP.

    from gradio_client import Client, handle_file
    c = Client("http://127.0.0.1:7860/")
    image, label_map, wplus, info = c.predict(seed=3, api_name="/sample")
    image, label_map, wplus, vector, info = c.predict(wplus=handle_file(wplus), label_map=handle_file("wanted.png"),
                                                      api_name="/edit")

Every endpoint is stateless: a picture travels as its w+ latent (``wplus.npy``), which each endpoint takes in and
gives back, so calls compose without a session. Each returns named files (``image.png``, ``labels.png`` — a palette
PNG whose pixel values are the class ids —, ``wplus.npy``) and an ``info`` dict. The UI's own events are callable
but left off the API page.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from editgan.app import gpu
from editgan.app.checks import checked_seed, checked_steps, checked_truncation, guarded
from editgan.app.engines import EngineRegistry
from editgan.app.jobs import LONG_JOBS, QUICK_JOBS, TimeBudget, job_budget
from editgan.app.policy import Policy
from editgan.app.scratch import ScratchSpace
from editgan.engine.latents import as_latent
from editgan.engine.model import EditGANModel, EditOutcome, Rendering
from editgan.modelio.picture_files import read_label_map, read_latent, write_rendering

Files = tuple[str, str | None, str, dict]


@dataclass
class ApiComponents:
    """Hidden components that give the endpoints their typed, named parameters and results on the API page."""
    seed: gr.Number
    truncation: gr.Number
    photo: gr.File
    steps: gr.Number
    wplus: gr.File
    label_map: gr.File
    scales: gr.JSON
    refine_steps: gr.Number
    image: gr.File
    labels: gr.File
    wplus_out: gr.File
    vector: gr.File
    info: gr.JSON


def api_components() -> ApiComponents:
    with gr.Group(visible=False):
        return ApiComponents(
            seed=gr.Number(3, label="seed", precision=0, info="random seed, 0 ≤ seed < 2³¹"),
            truncation=gr.Number(0.7, label="truncation", info="0 (the average picture) to 1 (no truncation)"),
            photo=gr.File(label="photo", file_types=["image"], type="filepath"),
            steps=gr.Number(100, label="steps", precision=0, info="optimization steps, 1 to 2000"),
            wplus=gr.File(label="wplus", type="filepath"),
            label_map=gr.File(label="label_map", type="filepath"),
            scales=gr.JSON({"name_of_a_preset": 1.0}, label="scales"),
            refine_steps=gr.Number(0, label="refine_steps", precision=0, info="0, or 1 to 200 refinement steps"),
            image=gr.File(label="image"), labels=gr.File(label="label_map"), wplus_out=gr.File(label="wplus"),
            vector=gr.File(label="vector"), info=gr.JSON(label="info"))


class PublicApi:
    """The endpoint functions, on the server's default model."""

    def __init__(self, engines: EngineRegistry, model: str, device: str | None, scratch: ScratchSpace,
                 policy: Policy):
        self.engines, self.model, self.device, self.scratch, self.policy = engines, model, device, scratch, policy

    def engine(self) -> EditGANModel:
        return self.engines.get(self.model, self.device)

    def gpu_seconds(self, steps: Any) -> int:
        """The GPU time (ZeroGPU) an optimization of ``steps`` steps (0: none, a preset applied) asks for."""
        steps = 0 if steps in (None, 0) else checked_steps(steps, "steps")
        return gpu.job_seconds(self.engine().generator.size, steps)

    def _files(self, engine: EditGANModel, rendering: Rendering, info: dict[str, Any]) -> Files:
        folder = self.scratch.request_folder()
        written = write_rendering(folder, rendering.image, rendering.labels, engine.config.palette, rendering.wplus)
        labels = next((str(p) for p in written if p.name == "labels.png"), None)
        return str(written[0]), labels, str(written[-1]), {"model": engine.config.name, **info}

    def _latent(self, engine: EditGANModel, wplus: str | None):
        if not wplus:
            raise ValueError("give the picture's latent: the wplus.npy that another endpoint returned")
        return as_latent(read_latent(wplus), (engine.n_latent, engine.style_dim))

    def _budget(self, engine: EditGANModel, steps: int) -> TimeBudget:
        """How long an optimization's steps may run (:func:`editgan.app.jobs.job_budget`)."""
        return job_budget(engine.generator.size, steps, self.policy.public)

    @staticmethod
    def _run(outcome: EditOutcome, budget: TimeBudget) -> dict[str, Any]:
        info = {"steps": len(outcome.losses), "final_loss": outcome.losses[-1] if outcome.losses else None,
                "perceptual_loss": outcome.perceptual}
        if budget.stopped:
            info["stopped"] = f"{budget.stopped}; the best step is returned"
        return info

    @guarded
    def sample(self, seed: float, truncation: float | None = None) -> Files:
        """A random picture: ``seed`` (0 ≤ seed < 2³¹) and ``truncation`` (0 to 1; the model's default when empty)
        → image.png, labels.png, wplus.npy and info."""
        engine = self.engine()
        seed = checked_seed(seed)
        truncation = checked_truncation(truncation, engine.config.truncation)
        rendering = engine.sample(seed, truncation)
        return self._files(engine, rendering, {"seed": seed, "truncation": truncation})

    @guarded
    def embed(self, photo: str | None, steps: float = 100) -> Files:
        """A photo → the latent that reproduces it (encoder guess, then ``steps`` of optimization), with its
        picture and label map."""
        if not photo:
            raise ValueError("give a photo to embed (PNG, JPEG or WebP)")
        engine = self.engine()
        steps = checked_steps(steps, "steps")
        budget = self._budget(engine, steps)
        outcome = engine.embed(photo, steps=steps, should_stop=budget.over)
        return self._files(engine, outcome, self._run(outcome, budget))

    @guarded
    def edit(self, wplus: str | None, label_map: str | None, steps: float = 100) -> tuple[str, str | None, str,
                                                                                          str, dict]:
        """Edit a picture (its ``wplus``) so that its label map becomes ``label_map``: the pixels where the given
        map differs from the picture's own are the painted ones. Returns the edited picture, its label map and
        latent, the edit as a reusable vector (.safetensors) and info."""
        engine = self.engine()
        if not engine.has_segmenter:
            raise ValueError(f"model {engine.config.name!r} has no segmentation branch, so it cannot edit by label "
                             f"map")
        steps = checked_steps(steps, "steps")
        budget = self._budget(engine, steps)
        w = self._latent(engine, wplus)
        if not label_map:
            raise ValueError("give the wanted label map (a PNG in the class colors, or a .npy of class ids)")
        current = engine.render(w)
        wanted = read_label_map(label_map, engine.config.palette, current.labels.shape)
        painted = wanted != current.labels
        if not painted.any():
            raise ValueError("the label map is the picture's own: change it where the picture should change")
        outcome = engine.edit(w, wanted, painted, steps=steps, should_stop=budget.over)
        image, labels, latent, info = self._files(engine, outcome, self._run(outcome, budget))
        vector = outcome.vector.save(Path(latent).parent / "edit.safetensors")
        return image, labels, latent, str(vector), {**info, "classes": outcome.vector.classes}

    @guarded
    def apply_presets(self, wplus: str | None, scales: dict | str | None, refine_steps: float = 0) -> Files:
        """Add the model's preset vectors to a picture, each with its scale (``{"name": scale}``), then optionally
        refine for ``refine_steps`` (0 to 200)."""
        engine = self.engine()
        w = self._latent(engine, wplus)
        if isinstance(scales, str):
            try:
                scales = json.loads(scales or "{}")
            except (json.JSONDecodeError, RecursionError):
                raise ValueError(f'scales must be a JSON object of preset name → scale, e.g. '
                                 f'{{"{next(iter(engine.presets), "name")}": 0.8}}') from None
        if not isinstance(scales, dict) or not scales:
            raise ValueError(f"scales must name at least one preset with its scale; this model has "
                             f"{sorted(engine.presets) or 'none'}")
        unknown = sorted(set(scales) - set(engine.presets))
        if unknown:
            raise ValueError(f"unknown preset {unknown[0]!r}; this model has {sorted(engine.presets) or 'none'}")
        pairs = [(engine.presets[name], engine.presets[name].check_scale(value)) for name, value in scales.items()]
        refine = 0 if refine_steps in (None, 0) else checked_steps(refine_steps, "refine_steps", 200)
        budget = self._budget(engine, refine)
        outcome = engine.apply_vectors(w, pairs, refine_steps=refine, should_stop=budget.over)
        return self._files(engine, outcome, {**self._run(outcome, budget), "scales": {v.name: s for v, s in pairs}})

    @guarded
    def export(self, wplus: str | None) -> Files:
        """A latent → its picture and label map as files (and the latent again)."""
        engine = self.engine()
        return self._files(engine, engine.render(self._latent(engine, wplus)), {})


def wire_public_api(api: PublicApi, c: ApiComponents, run_on_gpu: gpu.GpuRunner) -> None:
    """The endpoints, API-only (no UI trigger); ``run_on_gpu`` wraps the ones that run the model (ZeroGPU), each
    asking for the GPU time its work needs."""
    def endpoint(fn, inputs, outputs, name, group, seconds):
        gr.on([], run_on_gpu(fn, seconds), inputs, outputs, api_name=name,
              api_description=" ".join(fn.__doc__.split()), **group)

    files = [c.image, c.labels, c.wplus_out, c.info]
    endpoint(api.sample, [c.seed, c.truncation], files, "sample", QUICK_JOBS, gpu.QUICK_SECONDS)
    endpoint(api.embed, [c.photo, c.steps], files, "embed", LONG_JOBS,
             lambda photo, steps=100: api.gpu_seconds(steps))
    endpoint(api.edit, [c.wplus, c.label_map, c.steps], [c.image, c.labels, c.wplus_out, c.vector, c.info], "edit",
             LONG_JOBS, lambda wplus, label_map, steps=100: api.gpu_seconds(steps))
    endpoint(api.apply_presets, [c.wplus, c.scales, c.refine_steps], files, "apply_presets", LONG_JOBS,
             lambda wplus, scales, refine_steps=0: api.gpu_seconds(refine_steps))
    endpoint(api.export, [c.wplus], files, "export", QUICK_JOBS, gpu.QUICK_SECONDS)
