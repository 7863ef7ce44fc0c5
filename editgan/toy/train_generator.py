"""Train the embedded model's StyleGAN2 generator on rendered cartoon faces.

Recipe (chosen from the exploratory runs in shared/reference/training_notes.md): a *parameter-conditioned*
StyleGAN2. z ~ N(0, I) as usual; the first entries of z are the face parameters through the normal CDF
(see ``prior.py``), and the generator is trained to reproduce ``render(params)`` with a reconstruction loss.
That learns the layout an order of magnitude faster than adversarial training on these CPUs, and every sample
keeps a known true label map. The loss:

- L1 on pixels, weighted ×``part_weight`` on the small parts (brows, eyes, irises, pupils, nose, lips, mouth)
  using the true label map, since unweighted L1 averages the eyes away;
- L1 on image gradients (finite differences) with the same weights, for sharper edges than plain L1 gives;
- L1 on 2× and 4× downsampled images, which keeps colors and layout right early;
- StyleGAN2's adversarial term, small beside the reconstruction (``adv_weight``): the non-saturating loss from a
  discriminator that also sees the face parameters (``discriminator.py``), with lazy R1. A fresh discriminator is
  first trained alone for ``d_warmup`` steps, so that its first gradients to G are not noise.

Faces are rendered on the fly in a worker process, so no epoch is ever repeated. Training resumes from
``<run>/checkpoint.pt`` and exports the EMA generator to a model folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from editgan.modelio.checkpoint import load_strict, read_weights, save_weights
from editgan.networks.stylegan2 import Generator
from editgan.toy import faces
from editgan.toy.discriminator import FaceDiscriminator, discriminator_loss, generator_adversarial_loss, r1_penalty
from editgan.toy.prior import params_from_z

log = logging.getLogger(__name__)

SMALL_PARTS = tuple(faces.CLASS_NAMES.index(n) for n in
                    ("eyebrow", "eye_white", "iris", "pupil", "nose", "lips", "mouth_interior"))


@dataclass
class GeneratorRecipe:
    size: int = 64
    style_dim: int = 128
    n_mlp: int = 4
    channels: dict[int, int] = field(default_factory=lambda: {4: 256, 8: 256, 16: 128, 32: 128, 64: 64})
    lr_mlp: float = 1.0
    """The mapping's learning-rate multiplier. StyleGAN2 uses 0.01 for adversarial training; here the mapping
    must learn to read the face parameters out of z quickly, and 0.01 made it the bottleneck."""
    batch: int = 16
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.99)
    part_weight: float = 10.0
    gradient_weight: float = 1.0
    multiscale_weight: float = 1.0
    ema_kimg: float = 10.0
    seed: int = 0
    adv_weight: float = 0.01
    """Weight of G's non-saturating loss. At 0.1 it was as large as the L1 terms and overrode the target (hair
    erased, eyes drifting to a template: training_notes.md); 0 trains without a discriminator."""
    d_channels: dict[int, int] = field(default_factory=lambda: {128: 8, 64: 16, 32: 32, 16: 64, 8: 128, 4: 128})
    """Narrow at full resolution: the discriminator is most of the cost of a step on the CPU."""
    d_lr: float = 5e-4
    """Without StyleGAN2's equalized learning rate, its 2e-3 made the scores run off to thousands within 300
    steps here; 5e-4 learns steadily."""
    d_betas: tuple[float, float] = (0.0, 0.99)
    d_drift: float = 1e-3
    """ProGAN's drift penalty: d_drift · D(real)², which keeps the scores from wandering off together."""
    r1_gamma: float = 0.5
    r1_every: int = 16
    """Lazy R1: the penalty every ``r1_every`` discriminator steps, scaled up by as much."""
    d_warmup: int = 500
    """Discriminator-only steps when a run starts without a trained discriminator."""

    def __post_init__(self):
        # a size above the listed widths (a grown generator) halves the width at each doubling, like StyleGAN2
        self.channels = dict(self.channels)
        resolution = max(self.channels)
        while resolution < self.size:
            self.channels[resolution * 2] = max(self.channels[resolution] // 2, 16)
            resolution *= 2

    def generator(self) -> Generator:
        return Generator(self.size, self.style_dim, self.n_mlp, channels=self.channels, lr_mlp=self.lr_mlp)

    def discriminator(self) -> FaceDiscriminator:
        return FaceDiscriminator(self.size, {r: c for r, c in self.d_channels.items() if r <= self.size})

    def discriminator_optimizer(self, d: FaceDiscriminator) -> torch.optim.Optimizer:
        return torch.optim.Adam(d.parameters(), lr=self.d_lr, betas=self.d_betas)

    def generator_config(self) -> dict:
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channels": {str(k): v for k, v in self.channels.items()}, "blur_kernel": [1, 3, 3, 1],
                "lr_mlp": self.lr_mlp}


def render_faces(z: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The renderer's faces for latents z: (N, 3, size, size) images in [−1, 1] and (N, size, size) labels."""
    images, labels = faces.render_batch(params_from_z(z).numpy(), size)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1, torch.from_numpy(labels).long()


class RenderedFaces(IterableDataset):
    """An endless stream of (z, image in [−1, 1], labels) batches, rendered from z's face parameters."""

    def __init__(self, batch: int, style_dim: int, size: int, seed: int):
        self.batch, self.style_dim, self.size, self.seed = batch, style_dim, size, seed

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        gen = torch.Generator().manual_seed(self.seed * 7919 + worker)
        while True:
            z = torch.randn(self.batch, self.style_dim, generator=gen)
            yield (z, *render_faces(z, self.size))


def pixel_weights(labels: torch.Tensor, part_weight: float) -> torch.Tensor:
    small = torch.zeros_like(labels, dtype=torch.bool)
    for c in SMALL_PARTS:
        small |= labels == c
    return (1 + (part_weight - 1) * small.float())[:, None]


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor, recipe: GeneratorRecipe
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    weights = pixel_weights(labels, recipe.part_weight)
    l1 = ((fake - real).abs() * weights).mean()
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    grad = (((dx(fake) - dx(real)).abs() * weights[..., :, 1:]).mean()
            + ((dy(fake) - dy(real)).abs() * weights[..., 1:, :]).mean())
    multi = sum(F.l1_loss(F.avg_pool2d(fake, k), F.avg_pool2d(real, k)) for k in (2, 4))
    total = l1 + recipe.gradient_weight * grad + recipe.multiscale_weight * multi
    return total, {"l1": l1.item(), "grad": grad.item(), "multi": multi.item()}


@torch.no_grad()
def update_ema(ema: Generator, live: Generator, beta: float) -> None:
    for e, p in zip(ema.parameters(), live.parameters()):
        e.lerp_(p, 1 - beta)
    for e, b in zip(ema.buffers(), live.buffers()):
        e.copy_(b)


@torch.no_grad()
def grow_generator(small: Generator, recipe: GeneratorRecipe) -> Generator:
    """A generator of ``recipe.size`` that starts as ``small``'s picture upsampled: it takes every tensor the two
    share (mapping, blocks, output layers, noise maps), and the output layers of its new blocks start at zero, so
    those blocks add nothing until training teaches them detail."""
    grown = recipe.generator()
    target = grown.state_dict()
    shared = {name: value for name, value in small.state_dict().items()
              if name in target and target[name].shape == value.shape}
    if len(shared) != len(small.state_dict()) or grown.size <= small.size:
        raise ValueError(f"cannot grow a {small.size}-px generator into {recipe.generator_config()}: "
                         f"the recipe must keep its widths and mapping and be larger")
    grown.load_state_dict(shared, strict=False)
    for to_rgb in grown.to_rgbs[len(small.to_rgbs):]:
        to_rgb.conv.weight.zero_()
    log.info("grew the %d-px generator to %d px (%d tensors carried over)", small.size, grown.size, len(shared))
    return grown


@torch.no_grad()
def held_out_l1(g: Generator, style_dim: int, size: int, n: int = 32, seed: int = 12345) -> dict[str, float]:
    """Mean L1 per class on faces the training stream never draws (its own seed), for the log."""
    z = torch.randn(n, style_dim, generator=torch.Generator().manual_seed(seed))
    real, lab = render_faces(z, size)
    err = (g(z) - real).abs().mean(1)
    out = {"all": err.mean().item()}
    for c, name in enumerate(faces.CLASS_NAMES):
        if (lab == c).any():
            out[name] = err[lab == c].mean().item()
    return out


@dataclass
class Adversary:
    """The discriminator, its optimizer and how many steps it has taken (R1 and the warm-up count them)."""
    d: FaceDiscriminator
    optimizer: torch.optim.Optimizer
    steps: int = 0

    @classmethod
    def fresh(cls, recipe: GeneratorRecipe) -> "Adversary":
        d = recipe.discriminator()
        return cls(d, recipe.discriminator_optimizer(d))

    def step(self, real: torch.Tensor, fake: torch.Tensor, params: torch.Tensor, recipe: GeneratorRecipe
             ) -> dict[str, float]:
        self.d.requires_grad_(True)
        loss, parts = discriminator_loss(self.d, real, fake, params, recipe.d_drift)
        if self.steps % recipe.r1_every == 0:
            r1 = r1_penalty(self.d, real, params)
            loss = loss + recipe.r1_gamma / 2 * recipe.r1_every * r1
            parts["r1"] = r1.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        self.d.requires_grad_(False)  # G's step needs gradients through D, not for it
        return parts

    def state(self) -> dict:
        """What the run checkpoint keeps of it."""
        return {"d": self.d.state_dict(), "d_optimizer": self.optimizer.state_dict(), "d_steps": self.steps}

    @classmethod
    def from_state(cls, recipe: GeneratorRecipe, state: dict) -> "Adversary | None":
        """Inverse of :meth:`state`; None when the checkpoint holds no discriminator."""
        if "d" not in state:
            return None
        adversary = cls.fresh(recipe)
        adversary.d.load_state_dict(state["d"])
        adversary.optimizer.load_state_dict(state["d_optimizer"])
        adversary.steps = state["d_steps"]
        return adversary


def save_checkpoint(path: Path, g: Generator, g_ema: Generator, optimizer: torch.optim.Optimizer, step: int,
                    seconds: float, recipe: GeneratorRecipe, adversary: Adversary | None = None,
                    history: dict | None = None) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"g": g.state_dict(), "g_ema": g_ema.state_dict(), "optimizer": optimizer.state_dict(),
             "step": step, "seconds": seconds, "recipe": asdict(recipe), "history": history or {}}
    if adversary is not None:
        state.update(adversary.state())
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def export_generator(folder: Path, g_ema: Generator, recipe: GeneratorRecipe, step: int, seconds: float,
                     history: dict | None = None) -> None:
    """Write the EMA generator as ``generator.safetensors`` + its training record, in the model-folder layout.
    ``history`` says how the run got here, for the model card: ``adversarial_from_step`` (the step from which the
    adversarial term was on) and ``grown_from`` (the smaller generator's record, when it was grown)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(g_ema, folder / "generator.safetensors")
    record = {"step": step, "images_seen": step * recipe.batch, "cpu_seconds": round(seconds),
              "recipe": {k: v for k, v in asdict(recipe).items() if k not in ("channels", "d_channels")},
              "generator": recipe.generator_config(), **(history or {})}
    (folder / "generator_training.json").write_text(json.dumps(record, indent=1))


HISTORY_KEYS = ("adversarial_from_step", "grown_from")


def exported_record(folder: Path | None) -> dict:
    """An exported model folder's training record (empty when there is none)."""
    record = folder / "generator_training.json" if folder is not None else None
    return json.loads(record.read_text()) if record is not None and record.is_file() else {}


def history_of(record: dict) -> dict:
    return {k: v for k, v in record.items() if k in HISTORY_KEYS}


def load_exported(folder: Path, recipe: GeneratorRecipe | None = None) -> tuple[Generator, int, float]:
    """Resume from an exported model folder (the EMA weights; the optimizer restarts). Without a recipe the
    generator is built as the folder's record describes it."""
    from editgan.modelio.config import GeneratorConfig

    state = exported_record(folder)
    g = (recipe.generator() if recipe is not None
         else Generator(**GeneratorConfig.from_dict(state["generator"]).kwargs()))
    load_strict(g, read_weights(folder / "generator.safetensors"), "the exported generator does not fit the recipe")
    return g, int(state["step"]), float(state["cpu_seconds"])


def save_compact_checkpoint(path: Path, g: Generator, optimizer: torch.optim.Optimizer, step: int,
                            seconds: float, adversary: Adversary | None = None, g_ema: Generator | None = None,
                            history: dict | None = None) -> None:
    """The live generator (fp16) and Adam's moments (bf16: their squares underflow fp16) as one safetensors
    file, about 20 MB for the embedded model: small enough to keep the latest one in the repository. It resumes
    training on a fresh clone. The EMA generator goes along as fp16 weights (6 MB) when given, else it comes from
    the exported model folder; the discriminator as fp16 weights only (2 MB), its optimizer restarts."""
    from safetensors.torch import save_file

    tensors = {f"g.{name}": buffer.detach().contiguous() for name, buffer in g.named_buffers()}  # noise maps
    adam_steps = []
    for name, param in g.named_parameters():
        tensors[f"g.{name}"] = param.detach().half().contiguous()
        state = optimizer.state.get(param, {})
        if state:
            tensors[f"exp_avg.{name}"] = state["exp_avg"].bfloat16().contiguous()
            tensors[f"exp_avg_sq.{name}"] = state["exp_avg_sq"].bfloat16().contiguous()
            adam_steps.append(float(state["step"]))
    metadata = {"step": str(step), "seconds": str(round(seconds)), "adam_step": str(max(adam_steps, default=0)),
                "size": str(g.size), "history": json.dumps(history or {})}
    if g_ema is not None:
        tensors.update({f"ema.{name}": value.detach().half().contiguous()
                        for name, value in g_ema.state_dict().items()})
    if adversary is not None:
        tensors.update({f"d.{name}": value.detach().half().contiguous()
                        for name, value in adversary.d.state_dict().items()})
        metadata["d_steps"] = str(adversary.steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


@dataclass
class CompactCheckpoint:
    """What :func:`load_compact_checkpoint` gives back."""
    g: Generator
    optimizer: torch.optim.Optimizer
    step: int
    seconds: float
    g_ema: Generator | None
    """None when the checkpoint was saved without it (the EMA weights are then in the exported folder)."""
    history: dict


def compact_checkpoint_size(path: Path) -> int:
    """The picture size a compact checkpoint was trained at (those from before growing have 64 px)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return int(f.metadata().get("size", 64))


def load_compact_checkpoint(path: Path, recipe: GeneratorRecipe) -> CompactCheckpoint:
    """Inverse of :func:`save_compact_checkpoint`."""
    from safetensors import safe_open

    g = recipe.generator()
    optimizer = torch.optim.Adam(g.parameters(), lr=recipe.lr, betas=recipe.betas)
    g_ema = None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        names = set(f.keys())
        g.load_state_dict({name: f.get_tensor(f"g.{name}").float() for name in g.state_dict()}, strict=True)
        for name, param in g.named_parameters():
            if f"exp_avg.{name}" in names:
                optimizer.state[param] = {"step": torch.tensor(float(meta["adam_step"])),
                                          "exp_avg": f.get_tensor(f"exp_avg.{name}").float(),
                                          "exp_avg_sq": f.get_tensor(f"exp_avg_sq.{name}").float()}
        if any(name.startswith("ema.") for name in names):
            g_ema = recipe.generator()
            g_ema.load_state_dict({name: f.get_tensor(f"ema.{name}").float() for name in g_ema.state_dict()},
                                  strict=True)
    return CompactCheckpoint(g, optimizer, int(meta["step"]), float(meta["seconds"]), g_ema,
                             json.loads(meta.get("history", "{}")))


def load_compact_adversary(path: Path, recipe: GeneratorRecipe) -> Adversary | None:
    """The discriminator saved in a compact checkpoint (with a fresh optimizer), or None when it holds none."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        if "d_steps" not in meta:
            return None
        adversary = Adversary.fresh(recipe)
        adversary.d.load_state_dict({name: f.get_tensor(f"d.{name}").float()
                                     for name in adversary.d.state_dict()}, strict=True)
        adversary.steps = int(meta["d_steps"])
    return adversary


@dataclass
class StartingPoint:
    """The state a training run starts from."""
    g: Generator
    g_ema: Generator
    optimizer: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0
    adversary: Adversary | None = None
    history: dict = field(default_factory=dict)


def starting_point(recipe: GeneratorRecipe, checkpoint: Path, tree_checkpoint: Path | None,
                   export_dir: Path | None, grow_from: Path | None) -> StartingPoint:
    """Resume from the first of these that holds a generator of ``recipe.size``: the run checkpoint, the compact
    ``tree_checkpoint`` kept in the repository, the exported EMA weights in ``export_dir`` (fresh optimizer);
    else grow the smaller generator exported in ``grow_from``; else start afresh."""
    def fresh_optimizer(g: Generator) -> torch.optim.Optimizer:
        return torch.optim.Adam(g.parameters(), lr=recipe.lr, betas=recipe.betas)

    def copy_of(g: Generator) -> Generator:
        ema = recipe.generator()
        ema.load_state_dict(g.state_dict())
        return ema

    exported = exported_record(export_dir)
    exported_size = exported["generator"]["size"] if exported else None
    other_sizes = []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        if state["recipe"]["size"] == recipe.size:
            g, g_ema = recipe.generator(), recipe.generator()
            g.load_state_dict(state["g"])
            g_ema.load_state_dict(state["g_ema"])
            optimizer = fresh_optimizer(g)
            optimizer.load_state_dict(state["optimizer"])
            adversary = Adversary.from_state(recipe, state) if recipe.adv_weight > 0 else None
            log.info("resumed from %s at step %d", checkpoint, state["step"])
            return StartingPoint(g, g_ema, optimizer, state["step"], state["seconds"], adversary,
                                 state.get("history", history_of(exported)))
        other_sizes.append(f"{checkpoint} ({state['recipe']['size']} px)")
    if tree_checkpoint is not None and tree_checkpoint.exists():
        size = compact_checkpoint_size(tree_checkpoint)
        if size == recipe.size:
            saved = load_compact_checkpoint(tree_checkpoint, recipe)
            if saved.g_ema is None:  # saved before the EMA weights went along: they are in the export
                saved.g_ema = (load_exported(export_dir, recipe)[0] if exported_size == recipe.size
                               else copy_of(saved.g))
            adversary = load_compact_adversary(tree_checkpoint, recipe) if recipe.adv_weight > 0 else None
            log.info("resumed from %s at step %d", tree_checkpoint, saved.step)
            return StartingPoint(saved.g, saved.g_ema, saved.optimizer, saved.step, saved.seconds, adversary,
                                 saved.history or history_of(exported))
        other_sizes.append(f"{tree_checkpoint} ({size} px)")
    if exported_size == recipe.size:
        g, step, seconds = load_exported(export_dir, recipe)
        log.info("resumed from the exported EMA weights in %s at step %d (fresh optimizer)", export_dir, step)
        return StartingPoint(g, copy_of(g), fresh_optimizer(g), step, seconds, None, history_of(exported))
    if exported_size is not None:
        other_sizes.append(f"{export_dir} ({exported_size} px)")
    if grow_from is not None:
        small, step, seconds = load_exported(grow_from)
        g = grow_generator(small, recipe)
        record = exported_record(grow_from)
        grown_from = {"size": small.size, "step": step, "cpu_seconds": round(seconds), "recipe": record["recipe"],
                      **history_of(record)}
        return StartingPoint(g, copy_of(g), fresh_optimizer(g), step, seconds, None, {"grown_from": grown_from})
    if other_sizes:
        raise ValueError(f"nothing to resume at {recipe.size} px: {', '.join(other_sizes)} "
                         f"hold other sizes; pass --size to match, or --grow-from a smaller model folder")
    g = recipe.generator()
    return StartingPoint(g, copy_of(g), fresh_optimizer(g))


def train(run_dir: Path, export_dir: Path | None, minutes: float, recipe: GeneratorRecipe,
          save_every_minutes: float = 10.0, threads: int = 2, tree_checkpoint: Path | None = None,
          grow_from: Path | None = None) -> None:
    """Train for ``minutes`` of wall time from :func:`starting_point`. Writes the run checkpoint and the export
    every ``save_every_minutes`` and the compact checkpoint at the end."""
    torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.pt"
    start_from = starting_point(recipe, checkpoint, tree_checkpoint, export_dir, grow_from)
    g, g_ema, optimizer, adversary = start_from.g, start_from.g_ema, start_from.optimizer, start_from.adversary
    step, seconds, history = start_from.step, start_from.seconds, start_from.history
    for group in optimizer.param_groups:  # a resumed optimizer keeps its old rate otherwise
        group["lr"] = recipe.lr
    warmup = 0
    if recipe.adv_weight > 0 and adversary is None:
        adversary, warmup = Adversary.fresh(recipe), recipe.d_warmup
        log.info("a fresh discriminator: %d discriminator-only steps first", warmup)
    if adversary is not None:
        history.setdefault("adversarial_from_step", step)
    g_ema.requires_grad_(False).eval()
    beta = 0.5 ** (recipe.batch / (recipe.ema_kimg * 1000))
    data = DataLoader(RenderedFaces(recipe.batch, recipe.style_dim, recipe.size,
                                    recipe.seed + step + (adversary.steps if adversary else 0)),
                      batch_size=None, num_workers=1, prefetch_factor=4, persistent_workers=False)
    start = time.time()
    last_save = last_log = start
    log_path = run_dir / "log.jsonl"

    def save(step: int, total_seconds: float) -> None:
        """The run checkpoint and, when there is a model folder, the exported EMA weights."""
        save_checkpoint(checkpoint, g, g_ema, optimizer, step, total_seconds, recipe, adversary, history)
        if export_dir is not None:
            export_generator(export_dir, g_ema, recipe, step, total_seconds, history)

    interrupted = False
    try:  # Ctrl-C or SIGTERM (see main) end the run early, keeping what it trained
        for z, real, labels in data:
            params = params_from_z(z)
            if warmup > 0:  # the generator waits for a discriminator worth listening to
                with torch.no_grad():
                    fake = g(z)
                parts = adversary.step(real, fake, params, recipe)
                warmup -= 1
                if warmup % 100 == 0:
                    log.info("discriminator warm-up: %d steps left, %s", warmup, parts)
                now = time.time()
            else:
                fake = g(z)
                loss, parts = reconstruction_loss(fake, real, labels, recipe)
                if adversary is not None:
                    parts.update(adversary.step(real, fake, params, recipe))
                    adv = generator_adversarial_loss(adversary.d, fake, params)
                    loss = loss + recipe.adv_weight * adv
                    parts["adv"] = adv.item()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                update_ema(g_ema, g, beta)
                step += 1
                now = time.time()
                if step % 100 == 0:
                    entry = {"step": step, "loss": loss.item(), **parts,
                             "it_per_s": round(100 / (now - last_log), 2)}
                    last_log = now
                    if step % 500 == 0:
                        entry["held_out_l1"] = held_out_l1(g_ema, recipe.style_dim, recipe.size)
                    with log_path.open("a") as f:
                        f.write(json.dumps(entry) + "\n")
                    log.info("step %d loss %.4f", step, loss.item())
            done = (now - start) / 60 >= minutes
            if done or (now - last_save) / 60 >= save_every_minutes:
                save(step, seconds + now - start)
                last_save = now
            if done:
                break
    except KeyboardInterrupt:
        interrupted = True
        log.info("interrupted at step %d: saving", step)
    total = seconds + time.time() - start
    if interrupted:
        save(step, total)
    if tree_checkpoint is not None:
        save_compact_checkpoint(tree_checkpoint, g, optimizer, step, total, adversary, g_ema, history)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/toy_generator"), help="checkpoint/log folder")
    parser.add_argument("--export", type=Path, default=Path("assets/models/toy-faces"),
                        help="model folder that receives generator.safetensors")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--save-every", type=float, default=10.0, help="minutes between checkpoints")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/toy_generator.safetensors"),
                        help="compact resumable checkpoint kept in the repository (written at the end)")
    parser.add_argument("--size", type=int, default=GeneratorRecipe.size,
                        help="picture size; widths above 64 px halve at each doubling")
    parser.add_argument("--grow-from", type=Path, default=None, metavar="FOLDER",
                        help="start a larger --size from the smaller generator exported in FOLDER (when there is "
                             "nothing of that size to resume from)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=GeneratorRecipe.lr,
                        help="learning rate (lower it for a final, finer phase)")
    parser.add_argument("--adv-weight", type=float, default=GeneratorRecipe.adv_weight,
                        help="weight of the adversarial term (0: reconstruction only, no discriminator)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    recipe = GeneratorRecipe(size=args.size, batch=args.batch, lr=args.lr, adv_weight=args.adv_weight)
    try:
        train(args.run, args.export, args.minutes, recipe, args.save_every, args.threads, args.checkpoint,
              args.grow_from)
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
