"""The official EditGAN car release (nv-tlabs/editGAN_release, commit fef9ab8), as data for the converter.

Every value here comes from ``shared/reference/editgan_car_release.md``; the section numbers below point there.
"""
from __future__ import annotations

# §1: the 32 classes, spelled as the release's web tool spells them (including "licence" at id 14), and the
# palette that the tool uses to colour and to decode masks (the three copies in the release agree).
CLASSES: list[tuple[str, str]] = [
    ("background", "#ffffff"),
    ("back_bumper", "#eee566"),
    ("bumper", "#000000"),
    ("car_body", "#7c6322"),
    ("car_light_right", "#c17f0f"),
    ("car_light_left", "#6ab115"),
    ("door_back", "#f8d52a"),
    ("fender", "#fc9b53"),
    ("door_front", "#dc934d"),
    ("grilles", "#635303"),
    ("back_handle", "#74748a"),
    ("fronthandle", "#3fb618"),
    ("hoods", "#c8e225"),
    ("license_plate_front", "#e1b8a1"),
    ("licence_plate_back", "#e905db"),
    ("logo", "#8eacf8"),
    ("mirror", "#997092"),
    ("roof", "#2670fe"),
    ("running_boards", "#e51e8d"),
    ("taillight_right", "#73d083"),
    ("taillight_left", "#345354"),
    ("back_wheel", "#e53f6e"),
    ("front_wheel", "#c2577d"),
    ("trunks", "#e16012"),
    ("wheelhub_back", "#498be2"),
    ("wheelhub_front", "#ac8f10"),
    ("spoke_back", "#a9656f"),
    ("spoke_front", "#1f66d3"),
    ("door_window_back", "#688365"),
    ("back_windshield", "#46a89c"),
    ("door_window_front", "#b7f2d1"),
    ("windshield", "#48b8e2"),
]

# §5: the tool's ``car_semantic_ids``: a vector's classes are looked up by its name up to the first "_".
SEMANTIC_IDS: dict[str, list[int]] = {
    "frontlight": [4, 5],
    "wheel": [21, 22, 24, 25, 26, 27],
    "frontwheel": [22, 25, 27],
    "handle": [10, 11],
    "mirror": [16],
    "licenseplate": [13, 14],
    "spoke": [26, 27],
    "window": [16, 17, 30, 28],
    "backwindow": [28],
    "carback": [28, 29, 17],
}

# §5: the three released vectors. The tool's slider runs −4..4 and the server halves it, so the scale is −2..2
# (steps of 0.5); "10" refinement steps is the tool's default choice besides "no finetune".
# license_plate_disappear: the tool's prefix rule looks up "license", which is not a key (a KeyError if used);
# the intended classes are the two licence plates, "licenseplate" → 13, 14.
PRESETS: list[dict] = [
    {"name": "wheel_enlarge", "display_name": "Wheel size", "classes": [21, 22, 24, 25, 26, 27]},
    {"name": "frontlight_enlarge", "display_name": "Front light size", "classes": [4, 5]},
    {"name": "license_plate_disappear", "display_name": "Remove license plate", "classes": [13, 14]},
]
SCALE_RANGE = (-2.0, 2.0)
DEFAULT_SCALE = 1.0
REFINE_STEPS = 10

# §2: the car picture is 512 wide × 384 high in rows 64..448 of the 512×512 canvas: (top, left, height, width).
IMAGE_BOX = (64, 0, 384, 512)
TRUNCATION = 0.7

# §2 and §6: what the release's generator and encoder look like (for checking a conversion).
GENERATOR = {"size": 512, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2}
N_LATENT = 16
FEATURE_CHANNELS = 6016

# File names in the release (§4, §6, §7, and the release README's Google Drive folder).
GENERATOR_FILE = "checkpoint/stylegan_pretrain/stylegan2_networks_stylegan2-car-config-f.pt"
CLASSIFIER_FILES = "checkpoint/datasetgan_pretrain/classifier/car_model_{0..9}.pth"
ENCODER_FILE = "checkpoint/encoder_pretrain/BEST_loss2.841871976852417.pth"
VECTOR_FILES = "static/editing_vectors/*.npy (in the GitHub repository)"
CHECKPOINTS_URL = "https://drive.google.com/drive/folders/17hVqkBQGx_GLipFsf0AJTzM_qnL9blH_?usp=sharing"
REPOSITORY_URL = "https://github.com/nv-tlabs/editGAN_release"

LICENSE = "other"
LICENSE_NAME = "nvidia-source-code-license-nc"
LICENSE_LINK = "https://github.com/nv-tlabs/editGAN_release/blob/fef9ab8cd904d43ebd27fcd84a21171318b0ae69/LICENSE"
LICENSE_TEXT = (
    "NVIDIA Source Code License for EditGAN (non-commercial: research or evaluation use only). The StyleGAN2 car "
    "generator is NVIDIA's StyleGAN2 LSUN-car config-f model (Nvidia Source Code License-NC); the DatasetGAN "
    "classifiers and the encoder were trained by the EditGAN authors. Redistribution must include the license.")

def provenance(given: list[str]) -> str:
    """The model card's provenance for a conversion of ``given`` (file names, or counts of files)."""
    return (f"Converted with `python -m editgan convert editgan-car` from {', '.join(given)} (sha256 of each under "
            f"Sources), read in the layout of the official EditGAN release ({REPOSITORY_URL}, commit fef9ab8, whose "
            f"checkpoints its README links): generator checkpoint['g_ema'] (rosinality format), DatasetGAN pixel "
            f"classifiers car_model_k.pth as the segmentation branch, the FPN encoder, .npy editing vectors. "
            f"The converter checks the files' keys and shapes, not where they came from.")


NOTES = [
    "The segmentation branch upsamples generator features bilinearly everywhere. The original tool trains and "
    "displays with bilinear features but computes its editing losses on nearest-upsampled ones; that mismatch "
    "is a bug in the original and is not reproduced here.",
    "license_plate_disappear edits classes 13 and 14 (front and back licence plate). In the original tool this "
    "preset fails with a KeyError (its name prefix 'license' is not in the class table); this is the intended "
    "behaviour.",
    "Truncation 0.7 applies to random samples only; editing and embedding never truncate (as in the original).",
    "Refinement steps count optimizer steps: the original's '10' runs 9 Adam steps.",
]
