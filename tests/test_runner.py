"""The runner end to end: child processes, failed records, resume, kills and concurrent sweeps.

Deliberately broken models come from a fake installed distribution (tests/fake_models.py),
found through the real ``odebench.models`` entry-point group.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from odebench.jobs import Job
from odebench.results import read_record, read_records
from odebench.runner import LocalProcessExecutor, plan_jobs, run_sweep

TASK = "lorenz-forecast"


def sweep(results: Path, models: list[str], seeds=(0,), parallel: int = 1, **fields) -> tuple:
    lines: list[str] = []
    jobs = plan_jobs(models, [TASK], list(seeds), "quick", results, **fields)
    summary = run_sweep(jobs, LocalProcessExecutor(), log=lines.append, progress=False, parallel=parallel)
    return summary, lines


def test_every_fault_gives_a_failed_record_and_the_sweep_goes_on(fake_models, tmp_path: Path) -> None:
    models = ["fake-raises", "fake-nan", "fake-wrong-shape", "fake-hangs", "fake-huge", "fake-not-a-model", "fake-missing-attr", "fake-ok"]
    summary, lines = sweep(tmp_path, models, parallel=2, timeout_s=20, max_memory_bytes=2 * 2**30)  # two at once, as --jobs 2
    by_model = {r["model"]["name"]: r for r in summary.done}
    assert set(by_model) == set(models)
    expect = {
        "fake-raises": "deliberate failure in forward",
        "fake-nan": "NaN",
        "fake-wrong-shape": "shape",
        "fake-hangs": "timed out after 20 s",
        "fake-huge": "out of memory",  # 3 GiB asked for under a 2 GiB cap
        "fake-not-a-model": "torch.nn.Module",
        "fake-missing-attr": "AttributeError",
    }
    for name, needle in expect.items():
        rec = by_model[name]
        assert rec["status"] == "failed", name
        assert needle in rec["error"], (name, rec["error"])
        assert "\n" not in rec["error"]
        assert read_record(Job(TASK, name, 0, "quick", str(tmp_path)).record_path)["status"] == "failed"
    assert "odebench-fake-models" in by_model["fake-missing-attr"]["error"]
    assert by_model["fake-raises"]["traceback"] and "RuntimeError" in by_model["fake-raises"]["traceback"]
    assert by_model["fake-ok"]["status"] == "ok"
    assert len([ln for ln in lines if ln.startswith("[")]) == len(models)
    assert len([ln for ln in lines if ln.startswith("start ")]) == len(models)


def test_ok_record_has_measurements_and_loadable_weights(fake_models, tmp_path: Path) -> None:
    import torch

    summary, _ = sweep(tmp_path, ["fake-ok"])
    (rec,) = summary.done
    assert rec["status"] == "ok"
    assert rec["task"]["data_sha256"] and len(rec["task"]["data_sha256"]) == 64
    assert rec["model"]["distribution"] == "odebench-fake-models"
    cost = rec["cost"]
    assert cost["nfe_forward"] > 0 and cost["nfe_backward"] == 0 and cost["params"] == 12
    assert cost["train_seconds"] > 0 and cost["infer_seconds"] > 0 and cost["peak_cpu_bytes"] > 50 * 2**20
    assert cost["peak_gpu_bytes"] is None
    assert rec["env"]["threads"] == 1 and rec["env"]["torch"] and rec["env"]["cpu_model"]
    assert "vpt" in rec["metrics"]
    state = torch.load(tmp_path / rec["weights"], weights_only=True)
    assert set(state) == {"lin.weight", "lin.bias"}
    # The worker leaves without the interpreter's teardown: its last line still reaches the log.
    log = (tmp_path / "logs" / (Job(TASK, "fake-ok", 0, "quick", str(tmp_path)).record_path.stem + ".log")).read_text()
    assert log.rstrip().endswith(f"{TASK} fake-ok seed=0: ok")


def test_resume_keeps_a_record_of_another_protocol_version_and_says_so(fake_models, tmp_path: Path) -> None:
    """Resuming never overwrites a finished run, but a record made under an older protocol
    is named as such, with the way to rerun it."""
    sweep(tmp_path, ["fake-ok"])
    path = Job(TASK, "fake-ok", 0, "quick", str(tmp_path)).record_path
    rec = json.loads(path.read_text())
    current = rec["protocol"]["version"]
    rec["protocol"]["version"] = "1"
    path.write_text(json.dumps(rec))
    before = path.read_bytes()
    again, lines = sweep(tmp_path, ["fake-ok"])
    assert [j.model for j in again.skipped] == ["fake-ok"] and path.read_bytes() == before
    assert f"made under protocol v1 exists, but this odebench trains under v{current}" in lines[0] and "--force" in lines[0]
    rec["protocol"]["version"] = current
    path.write_text(json.dumps(rec))
    _, lines = sweep(tmp_path, ["fake-ok"])
    assert "an ok record exists (use --force to rerun)" in lines[0]


def test_peak_cpu_memory_sees_a_large_buffer(fake_models, tmp_path: Path) -> None:
    small, _ = sweep(tmp_path / "a", ["fake-hungry"])
    big, _ = sweep(tmp_path / "b", ["fake-hungry"], hparams={"megabytes": 600})
    grew = big.done[0]["cost"]["peak_cpu_bytes"] - small.done[0]["cost"]["peak_cpu_bytes"]
    assert grew > 500 * 2**20


def test_resume_skips_jobs_with_an_ok_record_and_force_reruns(fake_models, tmp_path: Path) -> None:
    first, _ = sweep(tmp_path, ["fake-ok", "fake-raises"])
    path = Job(TASK, "fake-ok", 0, "quick", str(tmp_path)).record_path
    before = path.read_bytes()
    second, lines = sweep(tmp_path, ["fake-ok", "fake-raises"])
    assert [j.model for j in second.skipped] == ["fake-ok"]
    assert [r["model"]["name"] for r in second.done] == ["fake-raises"]  # failed jobs are retried
    assert path.read_bytes() == before
    assert "skip" in lines[0]
    jobs = plan_jobs(["fake-ok"], [TASK], [0], "quick", tmp_path)
    forced = run_sweep(jobs, LocalProcessExecutor(), force=True, log=lambda _: None, progress=False)
    assert len(forced.done) == 1 and path.read_bytes() != before


def _cli(results: Path, models: str, seeds: str = "0", jobs: int = 2) -> list[str]:
    return [sys.executable, "-m", "odebench.cli", "run", "--model", models, "--task", TASK, "--seeds", seeds, "--profile", "quick", "--results", str(results), "--jobs", str(jobs)]


def test_sweep_killed_with_sigkill_then_resumed(fake_models, tmp_path: Path) -> None:
    proc = subprocess.Popen(_cli(tmp_path, "fake-ok", "0-3"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*.json")):
        time.sleep(0.1)
    assert list(tmp_path.glob("*.json")), "the sweep wrote no record in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the worker dies with its parent; nothing may appear afterwards
    records, skipped = read_records(tmp_path)
    assert not skipped and all(r["status"] == "ok" for r in records)
    done = len(records)
    assert 1 <= done < 4
    resumed = subprocess.run(_cli(tmp_path, "fake-ok", "0-3"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    records, skipped = read_records(tmp_path)
    assert not skipped and sorted(r["seed"] for r in records) == [0, 1, 2, 3]
    assert resumed.stderr.count("skip") == done


def test_two_sweeps_on_one_directory_lose_nothing(fake_models, tmp_path: Path) -> None:
    procs = [subprocess.Popen(_cli(tmp_path, "fake-ok", "0-3"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    records, skipped = read_records(tmp_path)
    assert not skipped
    assert sorted(r["seed"] for r in records) == [0, 1, 2, 3]
    assert not list(tmp_path.glob(".*.lock"))


WRITER = """
import sys
from odebench.results import write_json_atomic
big = {"payload": ["x" * 1000] * 2000, "i": 0}
write_json_atomic(sys.argv[1], big)
print("ready", flush=True)
while True:
    big["i"] += 1
    write_json_atomic(sys.argv[1], big)
"""


def test_a_record_killed_mid_write_is_never_half_written(tmp_path: Path) -> None:
    target = tmp_path / "rec.json"
    for delay in (0.0, 0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rec = json.loads(target.read_text())
        assert len(rec["payload"]) == 2000 and rec["i"] >= 0


def test_solver_step_guard_gives_a_failed_record(tmp_path: Path) -> None:
    summary, _ = sweep(tmp_path, ["neural-ode"], hparams={"max_num_steps": 5})
    (rec,) = summary.done
    assert rec["status"] == "failed"
    assert "max_num_steps" in rec["error"] and "\n" not in rec["error"]
    assert rec["model"]["distribution"] == "odebench"


def test_same_seed_in_two_child_processes_gives_identical_metrics(fake_models, tmp_path: Path) -> None:
    a, _ = sweep(tmp_path / "a", ["fake-ok"], seeds=(7,))
    b, _ = sweep(tmp_path / "b", ["fake-ok"], seeds=(7,))
    assert a.done[0]["status"] == b.done[0]["status"] == "ok"
    assert a.done[0]["metrics"] == b.done[0]["metrics"]
    assert a.done[0]["train"]["val_history"] == b.done[0]["train"]["val_history"]


def test_model_variants_live_side_by_side(fake_models, tmp_path: Path) -> None:
    """Records of two --model-arg variants get their own files: neither skips nor overwrites the other."""
    first, _ = sweep(tmp_path, ["fake-ok"], hparams={"scale": 1.0})
    second, lines = sweep(tmp_path, ["fake-ok"], hparams={"scale": 2.0})
    assert len(first.done) == 1 and len(second.done) == 1 and not second.skipped, lines
    records, _ = read_records(tmp_path)
    assert sorted(r["model"]["args"]["scale"] for r in records) == [1.0, 2.0]
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len(names) == 2 and all("scale=" in n for n in names) and names[0] != names[1]
    assert len(list(tmp_path.glob("*.pt"))) == 2
    again, _ = sweep(tmp_path, ["fake-ok"], hparams={"scale": 2.0})
    assert len(again.skipped) == 1 and not again.done
    default, _ = sweep(tmp_path, ["fake-ok"])
    assert len(default.done) == 1 and (tmp_path / f"{TASK}__fake-ok__quick__seed0.json").is_file()


def test_a_failed_rerun_leaves_no_weights_of_the_earlier_run(fake_models, tmp_path: Path) -> None:
    flag = tmp_path / "fail-now"
    summary, _ = sweep(tmp_path, ["fake-flaky"], hparams={"flag": str(flag)})
    path = summary.done[0]
    assert path["status"] == "ok"
    weights = list(tmp_path.glob("*.pt"))
    assert len(weights) == 1
    flag.write_text("1")
    jobs = plan_jobs(["fake-flaky"], [TASK], [0], "quick", tmp_path, hparams={"flag": str(flag)})
    rerun = run_sweep(jobs, LocalProcessExecutor(), force=True, log=lambda _: None, progress=False)
    assert rerun.done[0]["status"] == "failed" and "failing on purpose" in rerun.done[0]["error"]
    assert not weights[0].exists() and not list(tmp_path.glob("*.pt"))


def test_weights_that_are_not_plain_tensors_fail_the_run_with_the_entry_named(fake_models, tmp_path: Path) -> None:
    summary, _ = sweep(tmp_path, ["fake-extra-state", "fake-dict-state"])
    by_model = {r["model"]["name"]: r for r in summary.done}
    assert by_model["fake-extra-state"]["status"] == "failed" and "'_extra_state'" in by_model["fake-extra-state"]["error"]
    assert by_model["fake-dict-state"]["status"] == "failed" and "'config' is a dict" in by_model["fake-dict-state"]["error"]
    for rec in by_model.values():
        assert "weights_only=True" in rec["error"] and "AttributeError" not in rec["error"]
    assert not list(tmp_path.glob("*.pt"))


def test_a_model_that_prints_without_end_gets_a_capped_log(fake_models, tmp_path: Path) -> None:
    from odebench.joblog import LOG_HEAD_BYTES, LOG_TAIL_BYTES

    summary, _ = sweep(tmp_path, ["fake-chatty"], hparams={"megabytes": 6})
    assert summary.done[0]["status"] == "ok"
    log = next((tmp_path / "logs").glob("*fake-chatty*.log"))
    text = log.read_bytes()
    assert len(text) <= LOG_HEAD_BYTES + LOG_TAIL_BYTES + 1024 and b"bytes of output cut here" in text
    assert b"LAST LINE OF OUTPUT" in text


def test_records_written_by_the_parent_say_what_a_child_would(fake_models, tmp_path: Path) -> None:
    summary, _ = sweep(tmp_path, ["fake-hangs"], timeout_s=8)
    rec = summary.done[0]
    assert rec["status"] == "failed" and "timed out after 8 s" in rec["error"] and "raise it" not in rec["error"]
    from odebench import data

    assert rec["task"]["version"] == "1.1" and rec["task"]["data_sha256"] == data.verify_task(TASK)
    assert rec["task"]["spec"]["name"] == TASK and rec["protocol"]["profile"] == "quick"
    assert rec["env"]["device"] == "cpu" and rec["env"]["threads"] == 1 and rec["env"]["python"]
    assert rec["model"]["distribution"] == "odebench-fake-models"
    assert rec["limits"] == {"timeout_s": 8, "max_memory_bytes": None}


def test_a_runaway_solver_fails_with_the_nfe_limit_not_the_timeout(fake_models, tmp_path: Path) -> None:
    started = time.perf_counter()
    summary, _ = sweep(tmp_path, ["fake-runaway"], timeout_s=120)
    rec = summary.done[0]
    assert rec["status"] == "failed" and rec["error"].startswith("NFELimitError: NFE limit exceeded:") and "100,000 per call" in rec["error"]
    assert time.perf_counter() - started < 100


def test_cuda_jobs_are_spread_over_the_gpus_one_device_per_job(tmp_path: Path) -> None:
    executor = LocalProcessExecutor(gpus=3)
    jobs = plan_jobs(["resnet"], [TASK], [0, 1, 2, 3], "quick", tmp_path, device="cuda")
    placed = [executor.place(job) for job in jobs[:3]]
    assert [j.device for j, _ in placed] == ["cuda:0", "cuda:1", "cuda:2"] and [g for _, g in placed] == [0, 1, 2]
    executor._release_gpu(1)
    job, gpu = executor.place(jobs[3])
    assert job.device == "cuda:1" and gpu == 1 and job.run_id == jobs[3].run_id
    cpu_job = plan_jobs(["resnet"], [TASK], [0], "quick", tmp_path, device="cpu")[0]
    assert executor.place(cpu_job) == (cpu_job, None)
    assert LocalProcessExecutor(gpus=1).place(jobs[0]) == (jobs[0], None)  # one GPU: nothing to choose
