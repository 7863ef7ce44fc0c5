"""Tiny, quickly trained models for engine tests: a random StyleGAN2 and a segmenter that labels 'reddish' pixels."""
from __future__ import annotations

import contextlib

import torch

from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.networks.stylegan2 import Generator
from editgan.teach.training import SegmenterTrainingOptions, train_segmenter

STYLE_DIM = 64
SIZE = 32


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(SIZE, style_dim=STYLE_DIM, n_mlp=2, channels={4: 64, 8: 64, 16: 32, 32: 32}).eval()
    g.requires_grad_(False)
    return g


def redness_labels(images: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Class 1 where red exceeds the mean of green and blue by more than ``threshold``, else 0."""
    red = images[:, 0] - images[:, 1:].mean(1)
    return (red > threshold).long()


def tiny_model(seed: int = 0, n_train: int = 12) -> tuple[Generator, Segmenter, torch.Tensor]:
    """A generator, a 2-class segmenter trained on its samples (≈ 1 s), and the training latents."""
    g = tiny_generator(seed)
    with torch.no_grad():
        wplus = g.to_wplus(g.mapping(torch.randn(n_train, STYLE_DIM)))
        images = g.synthesis(wplus)
    red = images[:, 0] - images[:, 1:].mean(1)
    labels = redness_labels(images, red.median())
    config = SegmenterConfig(tuple(g.feature_channels()), n_classes=2, n_members=2, hidden=(32, 16))
    seg = train_segmenter(g, wplus, labels, config,
                          SegmenterTrainingOptions(epochs=8, batch_size=512, lr=3e-3, class_balance=0))
    seg.requires_grad_(False)
    return g, seg, wplus


def tiny_model_folder(folder, seed: int = 0, with_encoder: bool = True, with_preset: bool = True,
                      image_box=None):
    """Save a tiny model in the checkpoint layout and return the folder."""
    import numpy as np

    from editgan.engine.model import EditGANModel
    from editgan.modelio.config import GeneratorConfig, ModelConfig, SegmenterSettings
    from editgan.modelio.vectors import EditingVector
    from editgan.networks.encoder import EncoderConfig, LatentEncoder

    g, seg, _ = tiny_model(seed)
    gen_config = GeneratorConfig(size=SIZE, style_dim=STYLE_DIM, n_mlp=2, channels={4: 64, 8: 64, 16: 32, 32: 32})
    config = ModelConfig(name="tiny", generator=gen_config, class_names=["other", "reddish"],
                         palette=[(0, 0, 0), (255, 0, 0)], segmenter=SegmenterSettings(2, (32, 16)),
                         truncation=0.7, image_box=image_box, license="test")
    encoder = None
    if with_encoder:
        enc_config = EncoderConfig(SIZE, g.n_latent, STYLE_DIM, channels=[8, 8, 8])
        config.encoder = enc_config
        encoder = LatentEncoder(enc_config)
        encoder.latent_avg.copy_(g.mean_latent()[None])
    presets = []
    if with_preset:
        rng = np.random.default_rng(seed)
        presets.append(EditingVector("redder", rng.normal(0, 0.05, (g.n_latent, STYLE_DIM)), classes=[1],
                                     display_name="Redder", scale_range=(-2, 2), refine_steps=5))
    model = EditGANModel(config, g, seg, encoder, presets, device="cpu")
    return model.save_pretrained(folder)


@contextlib.contextmanager
def running_studio(folder, **options):
    """The studio on ``folder``'s model (``options`` go to build_demo), served on a free loopback port, launched as
    app.py launches it; yields its URL."""
    import socket

    from editgan.app import build_demo, launch_options
    from editgan.app.engines import EngineRegistry

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(model=str(folder), device="cpu", engines=EngineRegistry(), **options)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def tiny_generator_only_folder(folder, seed: int = 0):
    """A tiny model without a segmentation branch (no classes, no presets, no encoder), as a converted StyleGAN2
    is: sampling works, mask editing waits for a taught branch."""
    from editgan.engine.model import EditGANModel
    from editgan.modelio.config import GeneratorConfig, ModelConfig

    gen_config = GeneratorConfig(size=SIZE, style_dim=STYLE_DIM, n_mlp=2, channels={4: 64, 8: 64, 16: 32, 32: 32})
    config = ModelConfig(name="tiny-gen", generator=gen_config, truncation=0.7, license="test")
    return EditGANModel(config, tiny_generator(seed), device="cpu").save_pretrained(folder)
