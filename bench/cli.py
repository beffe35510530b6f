"""The ``odebench`` command line: list, run, analyze, leaderboard, data, records, validate.

``main(argv=None) -> int`` is testable without a subprocess. Misuse (unknown names,
malformed options, unusable paths, unverified data) ends with one clear line on stderr
and exit code 2; nothing already written is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "UsageError", "parse_seeds", "parse_model_args"]


class UsageError(Exception):
    """A mistake in how odebench was called; reported as one line, exit code 2."""


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) or a mix → sorted unique non-negative seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                start, stop = int(lo), int(hi)
                if stop < start:
                    raise ValueError
                seeds.update(range(start, stop + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise UsageError(f"--seeds: {part!r} is not a seed; write non-negative integers like 0,1,2 or a range 0-4") from None
    if any(s < 0 for s in seeds) or not seeds:
        raise UsageError("--seeds: seeds must be non-negative integers, e.g. --seeds 0,1,2")
    return sorted(seeds)


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_model_args(items: Sequence[str] | None) -> dict[str, Any]:
    """``["method=rk4", "rtol=1e-5", "adjoint=true"]`` → ``{"method": "rk4", "rtol": 1e-05, "adjoint": True}``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--model-arg {item!r}: write KEY=VALUE with KEY a Python identifier, e.g. --model-arg method=rk4")
        if key in out:
            raise UsageError(f"--model-arg {key!r} is given twice")
        out[key] = _parse_value(value.strip())
    return out


def _is_all(text: str) -> bool:
    """Whether a comma-separated names option asks for every registered name."""
    return [n.strip() for n in text.split(",") if n.strip()] == ["all"]


def _split_names(text: str, reg: Any) -> list[str]:
    """Names from a comma-separated option (or every registered name for 'all').

    An unknown name raises the registry's own error, with its did-you-mean suggestions.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"give one or more {reg.what} names separated by commas, or 'all'")
    if _is_all(text):
        return reg.names()
    for name in names:
        reg.entry(name)
    return list(dict.fromkeys(names))


def _writable_dir(path: str, option: str) -> Path:
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".odebench-write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path!r} is not a writable directory ({exc.strerror or exc}); choose another path") from None
    return target


# ----------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from . import registry

    reg = registry.models if args.what == "models" else registry.tasks
    entries = reg.entries()
    width = max((len(n) for n in entries), default=0)
    for name in sorted(entries):
        e = entries[name]
        print(f"{name:<{width}}  {e.distribution} {e.version}  ({e.target})")
        if args.verbose:
            from .describe import describe_model, describe_task

            try:
                text = describe_task(registry.load_task(name)) if args.what == "tasks" else describe_model(registry.model_factory(name))
            except registry.PluginError as exc:
                text = f"broken: {exc}"
            print("\n".join("    " + line for line in text.splitlines()))
    return 0


def cmd_records(args: argparse.Namespace) -> int:
    from .upgrade import upgrade_results

    results = Path(args.results)
    if not results.is_dir():
        raise UsageError(f"--results {args.results!r} is not a directory; point it at the directory given to 'odebench run --results'")
    _writable_dir(str(results), "--results")
    report = upgrade_results(results)
    print(report.format())
    return 1 if report.refused else 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import registry
    from .measure import resolve_device
    from .protocol import PROFILES
    from .runner import plan_jobs, run_sweep

    if args.profile not in PROFILES:
        raise UsageError(f"--profile {args.profile!r}: use one of {', '.join(PROFILES)}")
    if args.threads < 1:
        raise UsageError("--threads must be >= 1")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.max_memory is not None and not args.max_memory > 0:
        raise UsageError("--max-memory must be a positive number of GiB")
    seeds = parse_seeds(args.seeds)
    hparams = parse_model_args(args.model_arg)
    model_names = _split_names(args.model, registry.models)
    task_names = _split_names(args.task, registry.tasks)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    results = _writable_dir(args.results, "--results")
    specs = {name: registry.load_task(name) for name in task_names}
    hashes = _verify_data(task_names, args.data_dir)
    fresh = _fresh_test_splits(task_names, args.test_seed)
    broken = _load_factories(model_names, hparams)
    jobs = []
    parallel = args.jobs if args.jobs is not None else default_jobs(args.threads)
    if parallel < 1:
        raise UsageError("--jobs must be >= 1")
    if args.executor not in ("local", "dask"):
        raise UsageError(f"--executor {args.executor!r}: use local or dask")
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    # The default cap is on this machine's memory: for local jobs (or a local Dask
    # cluster) on the CPU; a CUDA job's GPU memory, or a remote worker's, only when asked.
    local_cpu = device.type == "cpu" and args.scheduler is None
    max_memory = int(args.max_memory * 2**30) if args.max_memory else (default_memory_cap(parallel_jobs=parallel) if local_cpu else None)
    planned = plan_jobs(model_names, task_names, seeds, args.profile, results, hparams=hparams, device=args.device, threads=args.threads, timeout_s=args.timeout, max_memory_bytes=max_memory, data_dir=args.data_dir)
    for job in planned:
        # A model that fails to load keeps its jobs: each gets a failed record with the error.
        if job.model in broken or registry.model_supports(job.model, specs[job.task].kind):
            test_sha = fresh[job.task] if job.task in fresh else None
            jobs.append(dataclasses.replace(job, data_sha256=hashes[job.task], test_seed=args.test_seed, test_sha256=test_sha))
    every_model = _is_all(args.model)
    for name in model_names:
        # 'all' means every model that supports one of the chosen tasks; a named model must.
        if not every_model and not any(j.model == name for j in jobs):
            kinds = sorted({specs[t].kind for t in task_names})
            raise UsageError(f"model {name!r} supports none of the chosen tasks (all {'/'.join(kinds)}); pick another task or model")
    if not jobs:
        raise UsageError("no installed model supports the chosen tasks; pick another task")
    model_names = [name for name in model_names if any(j.model == name for j in jobs)]
    skipped_pairs = len(model_names) * len(task_names) - len(jobs) // len(seeds)
    if skipped_pairs:
        print(f"note: {skipped_pairs} (task, model) pair(s) skipped: the model does not support that task kind", file=sys.stderr)
    executor = _executor(args, parallel, device.type)
    try:
        slots = getattr(executor, "slots", parallel)
        summary = run_sweep(jobs, executor, force=args.force, parallel=max(1, int(slots)))
    finally:
        shutdown = getattr(executor, "shutdown", None)
        if shutdown is not None:
            shutdown()
    if summary.done:
        from .progress import results_table

        by_id = {r.get("run_id"): r for r in summary.done}
        print(results_table([by_id[j.run_id] for j in jobs if j.run_id in by_id], seconds=lambda r: summary.seconds.get(str(r.get("run_id")))))
    ok = sum(r["status"] == "ok" for r in summary.done)
    print(f"{len(jobs)} jobs: {ok} ok, {len(summary.failed)} failed, {len(summary.skipped)} skipped (already ok), {len(summary.busy)} busy; records in {results}")
    return 1 if summary.failed else 0


def _executor(args: argparse.Namespace, parallel: int, device_type: str) -> Any:
    """The local process executor, or a Dask one (a local cluster of ``parallel`` workers
    bound to 127.0.0.1, or the scheduler at ``--scheduler``)."""
    from .runner import LocalProcessExecutor

    if args.executor == "local":
        return LocalProcessExecutor()
    try:
        from .dask_executor import DaskExecutor
    except ImportError as exc:
        raise UsageError(f"--executor dask: {exc}") from None
    try:
        return DaskExecutor(scheduler=args.scheduler, n_workers=parallel, gpus_per_worker=1 if device_type == "cuda" else 0)
    except OSError as exc:
        raise UsageError(f"--scheduler {args.scheduler!r}: cannot reach the Dask scheduler ({exc}); start one with 'dask scheduler' and give its address") from None


def _fresh_test_splits(task_names: Sequence[str], seed: int | None) -> dict[str, str]:
    """Generate (or find in the cache, verified) each task's fresh test split; task → sha256."""
    if seed is None:
        return {}
    import time

    from .tasks.fresh import fresh_test_split

    out: dict[str, str] = {}
    for name in task_names:
        started = time.perf_counter()
        try:
            split = fresh_test_split(name, seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        how = f"generated in {time.perf_counter() - started:.1f} s" if split.generated else "cached copy verified"
        print(f"fresh test split of {name} from seed {seed}: {how} ({split.directory})", file=sys.stderr)
        out[name] = split.sha256
    return out


def default_jobs(threads: int) -> int:
    """Jobs at once by default: the cores this process may use, divided by threads per job."""
    from ._cores import available_cores

    return max(1, available_cores() // max(1, threads))


def default_memory_cap(parallel_jobs: int, share: float = 0.8) -> int | None:
    """The per-job memory cap when ``--max-memory`` is not given: ``share`` of the machine's
    memory split between the jobs that run at once (``None`` where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return max(2**30, int(share * total / max(1, parallel_jobs)))


def _load_factories(model_names: Sequence[str], hparams: dict[str, Any]) -> dict[str, str]:
    """Load every model's factory; check the --model-arg names against each one that loads.

    Returns {model: error} for the models that fail to load (they are reported now and get
    failed records, so one broken plugin never blocks a sweep). An argument that a model
    does not accept is a usage error before any job starts, not a failure of every job.
    """
    from . import registry

    broken: dict[str, str] = {}
    for name in model_names:
        try:
            factory = registry.model_factory(name)
        except registry.PluginError as exc:
            broken[name] = str(exc)
            print(f"warning: {exc}; its jobs get failed records", file=sys.stderr)
            continue
        try:
            registry.check_model_args(name, factory, hparams)
        except registry.PluginError as exc:
            raise UsageError(str(exc)) from None
    return broken


def _verify_data(task_names: Sequence[str], data_dir: str | None) -> dict[str, str]:
    from . import data

    try:
        return {name: data.verify_task(name, data_dir) for name in task_names}
    except data.DataIntegrityError as exc:
        raise UsageError(f"refusing to run on unverified data: {exc}") from None


def cmd_analyze(args: argparse.Namespace) -> int:
    results = Path(args.results)
    if not results.is_dir():
        raise UsageError(f"--results {args.results!r} is not a directory; point it at the directory given to 'odebench run --results'")
    _writable_dir(str(results), "--results")
    from . import registry

    tasks = _split_names(args.task, registry.tasks) if args.task else None
    models = _split_names(args.model, registry.models) if args.model else None
    if args.threads < 1:
        raise UsageError("--threads must be >= 1")
    jobs = args.jobs if args.jobs is not None else default_jobs(args.threads)
    if jobs < 1:
        raise UsageError("--jobs must be >= 1")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    overrides = parse_model_args(args.set)
    from .analysis.analyse import AnalysisConfig

    known = {f.name for f in dataclasses.fields(AnalysisConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"--set {', '.join(unknown)}: not an analysis setting; known: {', '.join(sorted(known))}")
    try:
        AnalysisConfig(**overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--set: {exc}") from None
    from .analysis.runner import plan_analyses, run_analyses

    paths, notes = plan_analyses(results, tasks, models)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not paths:
        print(f"no ok forecast record with weights under {results}; nothing to analyse", file=sys.stderr)
        return 0
    summary = run_analyses(paths, jobs=jobs, threads=args.threads, timeout_s=args.timeout, force=args.force, config_overrides=overrides, data_dir=args.data_dir, emit=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{len(paths)} runs: {len(summary.ok)} analysed, {len(summary.failed)} failed, {len(summary.current)} already current; {summary.seconds:.0f} s with {jobs} job(s)")
    for path, error in summary.failed:
        print(f"failed: {path.name}: {error}")
    return 0 if not summary.failed else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    results = Path(args.results)
    if not results.is_dir():
        raise UsageError(f"--results {args.results!r} is not a directory; point it at the directory given to 'odebench run --results'")
    out = Path(args.out)
    _writable_dir(str(out.parent), "--out")

    from . import data
    from .leaderboard import write_leaderboard

    try:
        hashes = data.manifest_hashes(args.data_dir)
    except data.DataIntegrityError as exc:
        raise UsageError(str(exc)) from None
    report = write_leaderboard(results, out, current_hashes=hashes, plots=not args.no_plots)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for skipped in report.skipped:
        print(f"warning: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    print(f"wrote {report.out_file}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from . import data, registry

    if args.action == "verify":
        names = _split_names(args.task, registry.tasks) if args.task else None
        try:
            hashes = {n: data.verify_task(n, args.data_dir) for n in names} if names else data.verify_all(args.data_dir)
        except data.DataIntegrityError as exc:
            print(f"odebench: {exc}", file=sys.stderr)
            return 2
        for name, digest in sorted(hashes.items()):
            print(f"ok  {name}  {digest}")
        return 0
    from .tasks.build import build

    names = _split_names(args.task, registry.tasks) if args.task else None
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    report = build(names, directory=args.data_dir, check=args.check, jobs=args.jobs)
    print(report.format())
    return 0 if report.ok else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from . import registry
    from .validate import validate_model

    hparams = parse_model_args(args.model_arg)
    model_names = _split_names(args.model, registry.models)
    task_names = _split_names(args.task, registry.tasks)
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    for name in model_names:
        try:
            factory = registry.model_factory(name)
        except registry.PluginError:
            continue  # a model that fails to load is reported per task by validate itself
        try:
            registry.check_model_args(name, factory, hparams)
        except registry.PluginError as exc:
            raise UsageError(str(exc)) from None
    worst = 0
    for name in model_names:
        report = validate_model(name, task_names, hparams, timeout_s=args.timeout)
        print(report.format())
        worst = max(worst, 0 if report.ok else 1)
    return worst


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odebench", description="Benchmark Neural ODEs, ResNets and LM-ResNets on simulated physics.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered models or tasks")
    p.add_argument("what", choices=["models", "tasks"])
    p.add_argument("--verbose", "-v", action="store_true", help="tasks: kind, shapes, horizon, λ1, metrics, description; models: hyperparameters with defaults and allowed values")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="train and score models on tasks; one JSON record per (task, model, seed)")
    p.add_argument("--model", required=True, help="model name(s), comma-separated, or 'all'")
    p.add_argument("--task", required=True, help="task name(s), comma-separated, or 'all'")
    p.add_argument("--seeds", default="0", help="comma-separated seeds or a range, e.g. 0,1,2 or 0-2 (default 0)")
    p.add_argument("--profile", default="quick", help="quick (smoke) or standard (leaderboard); default quick")
    p.add_argument("--results", required=True, help="directory for the JSON records (created if missing)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="a model hyperparameter; repeatable")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("ODEBENCH_THREADS", "1")), help="torch intra-op threads per job (default 1, recorded)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N", help="jobs at once, each in its own process (default: available cores / --threads); with --executor dask and no --scheduler, the local cluster's workers")
    p.add_argument("--executor", default="local", help="local (child processes on this machine, default) or dask (a Dask distributed cluster)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="with --executor dask: the scheduler to use, e.g. tcp://127.0.0.1:8786 (default: start a local cluster)")
    p.add_argument("--timeout", type=float, default=None, help="seconds one job may take (default: the profile's)")
    p.add_argument("--max-memory", type=float, default=None, metavar="GIB", help="memory cap per job in GiB (CPU: address space; CUDA: GPU memory); default 80%% of the machine's memory shared by the jobs running at once, recorded")
    p.add_argument("--force", action="store_true", help="rerun jobs that already have an ok record")
    p.add_argument("--test-seed", type=int, default=None, metavar="S", help="score on a fresh test split drawn from seed S by the task's own generator (never shipped; cached in $ODEBENCH_CACHE or ~/.cache/odebench)")
    p.add_argument("--data-dir", default=None, help="data directory (default: $ODEBENCH_DATA or the packaged splits)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("analyze", help="analyse trained forecasters: long-run statistics, λ1, step and solver robustness, decay rates")
    p.add_argument("--results", required=True, help="directory of the run records (analysis records are written next to them)")
    p.add_argument("--task", default=None, help="task name(s), comma-separated (default: every forecast task with records)")
    p.add_argument("--model", default=None, help="model name(s), comma-separated (default: all)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N", help="analyses at once, each in its own process (default: available cores / --threads)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("ODEBENCH_THREADS", "1")), help="torch intra-op threads per analysis (default 1, recorded)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds one analysis may take before it is killed and recorded as failed (default 1800)")
    p.add_argument("--force", action="store_true", help="redo analyses that are already current")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="an analysis setting, e.g. n_rollouts=4 or long_time=50 (changes make earlier analyses stale); repeatable")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("leaderboard", help="aggregate records into a markdown leaderboard with plots")
    p.add_argument("--results", required=True)
    p.add_argument("--out", required=True, help="markdown file to write; plots go next to it")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("data", help="verify or rebuild the frozen dataset splits")
    p.add_argument("action", choices=["verify", "build"])
    p.add_argument("--task", default=None, help="task name(s), comma-separated (default: all)")
    p.add_argument("--check", action="store_true", help="build: regenerate into a temporary directory and compare with the canonical files")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N", help="build: worker processes, one file each at a time (default: available cores)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("records", help="maintain result records: 'upgrade' rewrites records of an older schema in place")
    p.add_argument("action", choices=["upgrade"])
    p.add_argument("--results", required=True, help="directory of the records")
    p.set_defaults(func=cmd_records)

    p = sub.add_parser("validate", help="check a model against every task's contract without training")
    p.add_argument("model", help="model name(s), comma-separated, or 'all'")
    p.add_argument("--task", default="all")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one task's checks may take before the model is reported as hung (default 120)")
    p.set_defaults(func=cmd_validate)
    return parser


def _version() -> str:
    from . import __version__

    return f"odebench {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code or 0)
    from .registry import RegistryError

    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"odebench: error: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"odebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("odebench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `odebench list models | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
