"""What a leaderboard row is: the key that groups a record, and the label a row shows.

A row is one (task, profile, model, requested arguments, device, hardware, data hash);
records sharing a key are seeds of one configuration on one machine and one data file.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "table_profile",
    "KEY_COLUMNS",
    "UNKNOWN_HARDWARE",
    "number",
    "hardware_of",
    "canonical",
    "one_line",
    "model_args",
    "row_key",
    "describe",
    "model_labels",
    "failure_label",
]

KEY_COLUMNS = ("task", "profile", "model", "hparams", "device", "hardware", "data_sha256")
UNKNOWN_HARDWARE = "unknown (failed before setup)"
_MAX_ERROR_CHARS = 200


def number(value: Any) -> float:
    """A JSON number as float; NaN for null, booleans and anything else (a missing value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def hardware_of(env: Mapping[str, Any]) -> tuple[str, str]:
    """(device, hardware key): the GPU's name, or the CPU model with the thread count."""
    if not env.get("device"):
        return "", UNKNOWN_HARDWARE
    device = str(env["device"])
    if device == "cuda":
        return device, str(env.get("device_name") or "unknown GPU")
    name = str(env.get("cpu_model") or env.get("device_name") or "unknown CPU")
    if device != "cpu":
        name = f"{env.get('device_name') or name} ({device})"
    threads = env.get("threads")
    if isinstance(threads, int) and not isinstance(threads, bool):
        name += f", {threads} thread" + ("" if threads == 1 else "s")
    return device, name


def canonical(obj: Any) -> str:
    """``obj`` as canonical JSON, so equal arguments compare equal as text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def one_line(error: Any) -> str:
    """The first non-empty line of an error message, cut to a table cell's length."""
    lines = [ln.strip() for ln in str(error or "").strip().splitlines() if ln.strip()]
    text = lines[0] if lines else "(no error message)"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def model_args(rec: Mapping[str, Any]) -> Any:
    """What distinguishes a model variant: the arguments the user asked for (``--model-arg``).

    Resolved defaults (``hparams``) differ between tasks, so grouping by them would split
    one configuration into a row per system; records without ``args`` fall back to them.
    """
    args = rec["model"].get("args")
    return args if isinstance(args, dict) else (rec["model"].get("hparams") or {})


def table_profile(rec: Mapping[str, Any]) -> str:
    """The profile a record's table is headed by, with the fresh test split it was scored on.

    Runs under another version of the profile's protocol, or scored on a fresh test split
    (``--test-seed``), are ranked in a table of their own and never averaged with others.
    """
    name = str(rec["profile"])
    version = (rec.get("protocol") or {}).get("version")
    if version not in (None, "1"):
        name += f" (protocol v{version})"
    split = rec["task"].get("test_split") or {}
    if split.get("source") == "fresh":
        name += f", fresh test split seed {split.get('seed')}"
    return name


def row_key(rec: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of :data:`KEY_COLUMNS` for ``rec``: records with one key are seeds of one row."""
    device, hardware = hardware_of(rec["env"])
    return (
        str(rec["task"]["name"]),
        table_profile(rec),
        str(rec["model"]["name"]),
        canonical(model_args(rec)),
        device,
        hardware,
        str(rec["task"].get("data_sha256")),
    )


def describe(rec: Mapping[str, Any]) -> str:
    """A record named for a warning: task / model seed (profile)."""
    return f"{rec['task']['name']} / {rec['model']['name']} seed {rec['seed']} ({table_profile(rec)})"


def model_labels(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(model, hparams json) → label; hyperparameters appear only where a model has variants.

    Built from the records' requested arguments (:func:`model_args`).
    """
    variants: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for rec in records:
        hp = model_args(rec)
        variants[rec["model"]["name"]][canonical(hp)] = hp if isinstance(hp, dict) else {"hparams": hp}
    labels: dict[tuple[str, str], str] = {}
    for model, by_json in variants.items():
        if len(by_json) == 1:
            labels[(model, next(iter(by_json)))] = model
            continue
        keys = sorted({k for hp in by_json.values() for k in hp})
        differing = [k for k in keys if len({canonical(hp.get(k, "-")) for hp in by_json.values()}) > 1]
        for js, hp in by_json.items():
            parts = [f"{k}={hp[k] if isinstance(hp[k], str) else canonical(hp[k])}" for k in differing if k in hp]
            labels[(model, js)] = f"{model} ({', '.join(parts)})" if parts else model
    return labels


def failure_label(model: str, hparams: Any, labels: Mapping[tuple[str, str], str]) -> str:
    """The label of a failed run, whose hparams may be only the requested arguments.

    A run that failed before its model was built records what was asked for, not the
    resolved hyperparameters; it takes the label of the one successful variant that
    agrees with every requested value, if exactly one does.
    """
    if (model, canonical(hparams or {})) in labels:
        return labels[(model, canonical(hparams or {}))]
    given = hparams if isinstance(hparams, dict) else {}
    variants = [(json.loads(js), lb) for (m, js), lb in labels.items() if m == model]
    fits = sorted(lb for hp, lb in variants if isinstance(hp, dict) and all(k in hp and canonical(hp[k]) == canonical(v) for k, v in given.items()))
    if len(fits) == 1:
        return fits[0]
    args = ", ".join(f"{k}={canonical(given[k])}" for k in sorted(given))
    return f"{model} (requested {args or 'defaults'})"
