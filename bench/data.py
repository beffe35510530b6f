"""Frozen dataset splits: HDF5 layout, the manifest of checksums, and verified loading.

Every split of every task is one file ``<task>.<split>.h5`` in the data directory:

* ``u``: float32 ``(n, n_times, *state)``, gzip + shuffle compressed;
* ``t``: float64 ``(n_times,)``; ``params``: float64 ``(n, p)`` physical parameters per
  sample (column names in the ``param_names`` attribute when the task gives them);
* ``y``: int64 ``(n,)`` class labels, classification tasks only;
* root attributes ``task``, ``version``, ``split``, ``system``, ``parameters`` (JSON),
  ``spec`` (JSON), ``generator``, ``seed`` and any extra ones of the task's recipe.

Files are byte-deterministic (no timestamps, fixed HDF5 format version), so rebuilding
gives the same sha256. ``MANIFEST.json`` in the same directory records, per task, its
version and, per file, its sha256 and size. A task's ``data_sha256`` (copied into every
result record) is the sha256 of the text ``"".join(f"{file}:{sha256}\\n")`` over its
files sorted by name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._io import write_bytes_atomic
from .spec import TaskSpec

__all__ = [
    "DATA_ENV",
    "SPLIT_NAMES",
    "MANIFEST_NAME",
    "DataIntegrityError",
    "Split",
    "data_dir",
    "split_filename",
    "file_sha256",
    "read_manifest",
    "write_manifest",
    "combined_sha256",
    "manifest_hashes",
    "verify_task",
    "verify_all",
    "load_split",
    "write_split",
]

DATA_ENV = "ODEBENCH_DATA"
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1
_HDF5_LIBVER = ("v110", "v110")  # pinned: the file layout must not drift with the library's defaults
_CHUNK_BYTES = 1 << 18
_FILE_MODE = 0o644  # temporary files are created private; the data files are meant to be shared


class DataIntegrityError(RuntimeError):
    """A frozen data file is missing, truncated or altered, or the manifest does not list it."""


@dataclass
class Split:
    """One loaded split: arrays and the file's root attributes (JSON ones decoded)."""

    task: str
    split: str
    u: np.ndarray
    t: np.ndarray
    y: np.ndarray | None
    params: np.ndarray
    attrs: dict[str, Any]


def data_dir() -> Path:
    """The data directory: ``$ODEBENCH_DATA`` if set, else ``data/`` of the installed ``odebench.tasks``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    from . import tasks  # the frozen splits ship inside the package, next to the task modules

    return Path(tasks.__file__).resolve().parent / "data"


def _resolve(directory: str | os.PathLike[str] | None) -> Path:
    return Path(directory) if directory is not None else data_dir()


def split_filename(task: str, split: str) -> str:
    """``<task>.<split>.h5``."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; use one of {SPLIT_NAMES}")
    return f"{task}.{split}.h5"


def _fix_hint(task: str) -> str:
    return f"rebuild it with `odebench data build --task {task}`, or reinstall odebench"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed ``MANIFEST.json``: ``{"format": 1, "tasks": {task: {"version", "files": {name: {"sha256", "size"}}}}}``."""
    path = _resolve(directory) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataIntegrityError(f"{path}: manifest missing; build the data with `odebench data build`, or reinstall odebench") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataIntegrityError(f"{path}: manifest unreadable ({exc}); rebuild it with `odebench data build`") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tasks"), dict):
        raise DataIntegrityError(f"{path}: not an odebench data manifest (no 'tasks' object); rebuild it with `odebench data build`")
    return manifest


def write_manifest(directory: str | os.PathLike[str], tasks: Mapping[str, Mapping[str, Any]]) -> Path:
    """Replace the entries of ``tasks`` in the directory's manifest, keeping the others; atomic.

    ``tasks`` maps a task name to ``{"version": str, "files": {name: {"sha256", "size"}}}``.
    """
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    try:
        current = read_manifest(directory)["tasks"]
    except DataIntegrityError:
        current = {}
    merged = {**current, **{name: dict(entry) for name, entry in tasks.items()}}
    text = json.dumps({"format": MANIFEST_FORMAT, "tasks": merged}, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def combined_sha256(file_shas: Mapping[str, str]) -> str:
    """sha256 of ``"".join(f"{name}:{sha}\\n")`` over the files sorted by name."""
    text = "".join(f"{name}:{sha}\n" for name, sha in sorted(file_shas.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_hashes(directory: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Task -> ``data_sha256`` as the manifest records it, without reading the data files.

    Cheap enough to label results (e.g. flag records made on other data); use
    :func:`verify_task` before trusting the files themselves.
    """
    directory = _resolve(directory)
    manifest = read_manifest(directory)
    return {
        task: combined_sha256({name: str(f["sha256"]) for name, f in _task_entry(manifest, task, directory)["files"].items()})
        for task in sorted(manifest["tasks"])
    }


def _task_entry(manifest: Mapping[str, Any], task: str, directory: Path) -> Mapping[str, Any]:
    entry = manifest["tasks"].get(task)
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        listed = ", ".join(sorted(manifest["tasks"])) or "(none)"
        raise DataIntegrityError(
            f"{directory / MANIFEST_NAME}: task {task!r} is not in the manifest (listed: {listed}); {_fix_hint(task)}"
        )
    return entry


def _check_file(path: Path, expected: Mapping[str, Any], task: str) -> tuple[str, bytes]:
    """The file's sha256 and bytes, or :class:`DataIntegrityError` if they are not the expected ones."""
    want = str(expected.get("sha256"))
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise DataIntegrityError(f"{path}: missing (expected sha256 {want}, actual: missing); {_fix_hint(task)}") from None
    actual = hashlib.sha256(payload).hexdigest()
    size = expected.get("size")
    if size is not None and len(payload) != int(size):
        raise DataIntegrityError(
            f"{path}: size mismatch ({len(payload)} bytes, expected {size}): expected sha256 {want}, "
            f"actual sha256 {actual}; {_fix_hint(task)}"
        )
    if actual != want:
        raise DataIntegrityError(f"{path}: checksum mismatch: expected sha256 {want}, actual sha256 {actual}; {_fix_hint(task)}")
    return actual, payload


def verify_task(task: str, directory: str | os.PathLike[str] | None = None) -> str:
    """Check the task's three split files against the manifest; return its ``data_sha256``.

    Raises :class:`DataIntegrityError` at the first bad file, naming it, the expected and
    the actual sha256 (or "missing", or the size mismatch) and the command that fixes it.
    """
    directory = _resolve(directory)
    entry = _task_entry(read_manifest(directory), task, directory)
    shas: dict[str, str] = {}
    for split in SPLIT_NAMES:
        name = split_filename(task, split)
        expected = entry["files"].get(name)
        if expected is None:
            raise DataIntegrityError(f"{directory / MANIFEST_NAME}: no entry for {name}; {_fix_hint(task)}")
        shas[name], _ = _check_file(directory / name, expected, task)
    return combined_sha256(shas)


def verify_all(directory: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Verify every task in the manifest; task -> ``data_sha256``.

    All tasks are checked before raising: one :class:`DataIntegrityError` lists every
    problem, one line per bad task.
    """
    directory = _resolve(directory)
    manifest = read_manifest(directory)
    digests: dict[str, str] = {}
    problems: list[str] = []
    for task in sorted(manifest["tasks"]):
        try:
            digests[task] = verify_task(task, directory)
        except DataIntegrityError as exc:
            problems.append(str(exc))
    if problems:
        raise DataIntegrityError(f"{len(problems)} task(s) failed verification:\n" + "\n".join(problems))
    return digests


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_split(task: str, split: str, directory: str | os.PathLike[str] | None = None, verify: bool = True) -> Split:
    """Load one split. With ``verify`` the bytes are checked against the manifest first and
    the arrays are read from exactly those checked bytes, so an unverified file is never read.
    """
    import h5py

    directory = _resolve(directory)
    name = split_filename(task, split)
    path = directory / name
    if verify:
        entry = _task_entry(read_manifest(directory), task, directory)
        expected = entry["files"].get(name)
        if expected is None:
            raise DataIntegrityError(f"{directory / MANIFEST_NAME}: no entry for {name}; {_fix_hint(task)}")
        _, payload = _check_file(path, expected, task)
        source: Any = io.BytesIO(payload)
    else:
        if not path.is_file():
            raise DataIntegrityError(f"{path}: missing (actual: missing); {_fix_hint(task)}")
        source = path
    with h5py.File(source, "r") as fh:
        attrs = {key: _decode_attr(value) for key, value in fh.attrs.items()}
        if attrs.get("task") != task or attrs.get("split") != split:
            raise DataIntegrityError(f"{path}: holds task {attrs.get('task')!r} split {attrs.get('split')!r}, not {task!r} {split!r}; {_fix_hint(task)}")
        y = np.asarray(fh["y"][...], dtype=np.int64) if "y" in fh else None
        return Split(
            task=task,
            split=split,
            u=np.asarray(fh["u"][...], dtype=np.float32),
            t=np.asarray(fh["t"][...], dtype=np.float64),
            y=y,
            params=np.asarray(fh["params"][...], dtype=np.float64),
            attrs=attrs,
        )


def _check_arrays(spec: TaskSpec, split_name: str, arrays: Any) -> None:
    u, t, params, y = arrays.u, arrays.t, arrays.params, arrays.y
    where = f"task {spec.name!r} split {split_name!r}"
    if u.ndim != 2 + len(spec.state_shape) or tuple(u.shape[2:]) != tuple(spec.state_shape):
        raise ValueError(f"{where}: u must have shape (n, n_times, *{spec.state_shape}), got {u.shape}")
    if t.shape != (u.shape[1],):
        raise ValueError(f"{where}: t must have shape ({u.shape[1]},), got {t.shape}")
    if params.ndim != 2 or params.shape[0] != u.shape[0]:
        raise ValueError(f"{where}: params must have shape ({u.shape[0]}, p), got {params.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{where}: u contains NaN or Inf")
    spec.objective.check_labels(spec, where, y, u.shape[0])


def _json_attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True)


def write_split(
    path: str | os.PathLike[str],
    spec: TaskSpec,
    split_name: str,
    arrays: Any,
    seed: int,
    generator: str,
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write one split file, byte-deterministically and atomically (temporary file, then rename).

    ``arrays`` is a :class:`odebench.tasks._recipe.SplitArrays`. Non-scalar extra
    attributes are stored as JSON text.
    """
    import h5py

    if split_name not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split_name!r}; use one of {SPLIT_NAMES}")
    _check_arrays(spec, split_name, arrays)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    u = np.ascontiguousarray(arrays.u, dtype=np.float32)
    per_sample = max(1, u[0].nbytes)
    chunks = (max(1, min(u.shape[0], _CHUNK_BYTES // per_sample)), *u.shape[1:])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", libver=_HDF5_LIBVER, track_order=False) as fh:
            fh.create_dataset("u", data=u, chunks=chunks, compression="gzip", compression_opts=6, shuffle=True, track_times=False)
            fh.create_dataset("t", data=np.asarray(arrays.t, dtype=np.float64), track_times=False)
            fh.create_dataset("params", data=np.asarray(arrays.params, dtype=np.float64), track_times=False)
            if arrays.y is not None:
                fh.create_dataset("y", data=np.asarray(arrays.y, dtype=np.int64), track_times=False)
            attrs = {
                "task": spec.name,
                "version": spec.version,
                "split": split_name,
                "system": spec.system,
                # Declared order, not sorted: a mapping such as Lorenz's ``regimes`` must
                # read back in the order of ``class_names``.
                "parameters": json.dumps(dict(spec.parameters)),
                "spec": json.dumps(spec.defining_dict()),
                "generator": generator,
                "seed": int(seed),
            }
            for key, value in (extra_attrs or {}).items():
                if key in attrs:
                    raise ValueError(f"extra attribute {key!r} would overwrite a standard one; rename it")
                attrs[key] = _json_attr(value)
            for key in sorted(attrs):
                fh.attrs[key] = attrs[key]
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
