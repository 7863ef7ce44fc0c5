"""Annotation folders in and out of the browser: uploaded files (a zip, or the folder's files) → a flat folder in
the visitor's scratch space, and a folder → one zip to download. Uploads are treated as hostile: only flat names
of the folder format's kinds are taken, and counts and sizes are bounded before anything is read whole."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence

from editgan.errors import AnnotationError
from editgan.teach.annotations import CLASSES_FILE, MAX_SAMPLES

KINDS = {".png", ".npy", ".json"}
MAX_TOTAL_BYTES = 256 * 2**20
"""The unpacked annotations of one upload, all files together."""


COPY_CHUNK = 2**20


def unpack_upload(paths: Sequence[str | Path], folder: Path, max_samples: int = MAX_SAMPLES) -> Path:
    """Uploaded files → ``folder`` (flat): a zip's members are taken by their last name part (a zip of the folder
    itself works), other files by their name. Files of other kinds (and macOS's ``__MACOSX`` copies) are skipped.
    At most a classes file and ``max_samples`` label maps with their latents are taken: an upload over the
    session's limit is refused here, before any label map is decoded."""
    if not paths:
        raise AnnotationError("no files were uploaded: upload a zip of an annotation folder, or its files "
                              f"({CLASSES_FILE} and the label maps)")
    folder.mkdir(parents=True, exist_ok=True)
    budget = [MAX_TOTAL_BYTES, 2 * max_samples + 1, max_samples, max_samples]
    for path in paths:
        path = Path(path)
        if path.suffix.lower() == ".zip":
            _unzip(path, folder, budget)
        elif path.suffix.lower() in KINDS:
            _take(path.name, path.stat().st_size, budget, path.name)
            shutil.copyfile(path, folder / path.name)
    if not (folder / CLASSES_FILE).is_file():
        raise AnnotationError(f"the upload has no {CLASSES_FILE} (it lists the classes: "
                              '{"classes": [{"name": "background", "color": [0, 0, 0]}, ...]})')
    return folder


def _take(name: str, size: int, budget: list[int], where: str) -> None:
    """Count one file against ``budget`` = [bytes left, files left, label maps left, the most label maps]."""
    budget[0] -= size
    budget[1] -= 1
    budget[2] -= PurePosixPath(name).suffix.lower() == ".png"
    if budget[1] < 0 or budget[2] < 0:
        raise AnnotationError(f"the upload holds more files than a {CLASSES_FILE} and {budget[3]} label maps with "
                              f"their latents: at most {budget[3]} annotated samples are taken here")
    if budget[0] < 0:
        raise AnnotationError(f"{where}: the upload unpacks to more than {MAX_TOTAL_BYTES // 2**20} MB")


def _unzip(path: Path, folder: Path, budget: list[int]) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise AnnotationError(f"{path.name}: not a readable zip file") from None
    with archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if info.is_dir() or not parts or "__MACOSX" in parts or parts[-1].startswith("."):
                continue
            name = parts[-1]
            if PurePosixPath(name).suffix.lower() not in KINDS:
                continue
            _take(name, info.file_size, budget, f"{path.name}: {name}")
            if (folder / name).exists():
                raise AnnotationError(f"{path.name}: two files are named {name}; an annotation folder is flat")
            try:
                with archive.open(info) as source, open(folder / name, "wb") as target:
                    # the size in the zip's directory may lie: copy at most what it declares, plus one byte to tell,
                    # a chunk at a time
                    left = info.file_size + 1
                    while left > 0 and (chunk := source.read(min(COPY_CHUNK, left))):
                        target.write(chunk)
                        left -= len(chunk)
                    if left == 0:
                        raise AnnotationError(f"{path.name}: {name} is larger than the zip says")
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError):
                raise AnnotationError(f"{path.name}: {name} cannot be unpacked (damaged or encrypted)") from None


def pack_folder(folder: Path, zip_path: Path) -> Path:
    """Every file of ``folder`` (flat) into ``zip_path``, under a top folder of the same name as the zip's stem."""
    if not folder.is_dir():
        raise ValueError("there is nothing to pack: the folder is gone")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{zip_path.stem}/{file.relative_to(folder).as_posix()}")
    return zip_path
