"""Converters of foreign checkpoints into the checkpoint layout, one module per format (``python -m editgan convert``):
:mod:`.rosinality` (stylegan2-pytorch ``g_ema``), :mod:`.editgan_car` (the official EditGAN car release). Shared
reading and checking is in :mod:`.common`; every converter writes through ``modelio.checkpoint.write_new_model``."""
