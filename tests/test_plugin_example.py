"""The example model plugin in examples/plugin: the model itself, then a real install.

The unit tests import the example from its source folder and check it against
hand-written references. The end-to-end test installs it into a throw-away virtual
environment and drives odebench's command line there, as a new user would:
list → validate → run → leaderboard.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

import odebench
from odebench.registry import load_task
from odebench.toolkit import Solver, SolverStepLimitError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
DIST = "odebench-example-anode"
TASKS = ("heat-forecast", "heat-classify", "lorenz-forecast", "lorenz-classify", "ks-forecast", "ks-classify")


@pytest.fixture(scope="module")
def anode() -> ModuleType:
    """``odebench_example.models``, imported from the example's source folder."""
    sys.path.insert(0, str(PLUGIN))
    try:
        yield importlib.import_module("odebench_example.models")
    finally:
        sys.path.remove(str(PLUGIN))
        for name in [m for m in sys.modules if m == "odebench_example" or m.startswith("odebench_example.")]:
            del sys.modules[name]


def grid(task, n: int) -> torch.Tensor:
    return torch.as_tensor(task.dt * torch.arange(n, dtype=torch.float64), dtype=torch.float32)


def random_state(task, batch: int, seed: int = 0) -> torch.Tensor:
    scale = 10.0 if task.system.startswith("lorenz") else 1.0
    return scale * torch.randn((batch, *task.state_shape), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("name", TASKS)
def test_shapes_first_entry_and_nfe_on_every_task(anode: ModuleType, name: str) -> None:
    task = load_task(name)
    model = anode.build_anode(task)
    assert isinstance(model.nfe, int) and model.nfe == 0
    if task.kind == "forecast":
        u0 = random_state(task, 3)
        out = model(u0, grid(task, 6))
        assert out.shape == (3, 6, *task.state_shape) and out.dtype == torch.float32
        assert torch.equal(out[:, 0], u0)
    else:
        x = torch.randn((3, task.n_times, *task.state_shape), generator=torch.Generator().manual_seed(1))
        out = model(x)
        assert out.shape == (3, task.n_classes)
    assert torch.isfinite(out).all()
    assert model.nfe > 0  # dopri5 evaluates the field at least six times per step


@pytest.mark.parametrize("name, augment_dim", [("lorenz-forecast", 3), ("heat-forecast", 2), ("lorenz-forecast", 0)])
def test_euler_forecast_is_the_hand_written_augmented_rollout(anode: ModuleType, name: str, augment_dim: int) -> None:
    # dh/dt = f(h) / dt with one Euler step per sample: [u, a] <- [u, a] + f([u, a]), a(0) = 0.
    task = load_task(name)
    model = anode.build_anode(task, method="euler", augment_dim=augment_dim)
    field, scale = model.ode.field, model.state_scale
    u0 = random_state(task, 4)
    out = model(u0, grid(task, 7))
    assert model.nfe == 6
    with torch.no_grad():
        h = u0.unsqueeze(1) / scale if model.grid else u0 / scale
        y = torch.cat([h, torch.zeros((4, augment_dim, *h.shape[2:]))], dim=1)
        expected = [u0]
        for _ in range(6):
            y = y + field(y)
            expected.append((y[:, : h.shape[1]] * scale).reshape(u0.shape))
    torch.testing.assert_close(out.detach(), torch.stack(expected, dim=1), rtol=1e-5, atol=1e-5)


def test_augmented_channels_change_the_forecast(anode: ModuleType) -> None:
    # The extra channels are coupled in: the same weights without them forecast differently.
    task = load_task("lorenz-forecast")
    torch.manual_seed(0)
    model = anode.build_anode(task, method="rk4", augment_dim=2)
    u0 = random_state(task, 2)
    with torch.no_grad():
        model.ode.field.net[-1].weight.mul_(10.0)  # undo the small initialisation
        full = model(u0, grid(task, 20))
        model.ode.field.net[0].weight[:, 3:] = 0.0  # cut the augmented inputs
        cut = model(u0, grid(task, 20))
    assert (full - cut).abs().max() > 0.1


@pytest.mark.parametrize(
    "name, hparams, per_forward",
    [
        ("lorenz-forecast", {"method": "rk4"}, 4 * 5),
        ("lorenz-forecast", {"method": "rk4", "step_size": 0.005}, 4 * 10),
        ("heat-forecast", {"method": "midpoint"}, 2 * 5),
        ("lorenz-classify", {"method": "rk4", "step_size": 0.25}, 4 * 4),
        ("ks-classify", {"method": "euler", "step_size": 0.1}, 10),
    ],
)
def test_fixed_step_nfe_counts(anode: ModuleType, name: str, hparams: dict, per_forward: int) -> None:
    task = load_task(name)
    model = anode.build_anode(task, **hparams)
    for calls in (1, 2):
        out = model(random_state(task, 2), grid(task, 6)) if task.kind == "forecast" else model(torch.randn(2, task.n_times, *task.state_shape))
        assert model.nfe == calls * per_forward
    nfe = model.nfe
    out.sum().backward()
    assert model.nfe == nfe  # direct backpropagation never re-evaluates the field


def test_adaptive_solve_matches_a_fine_fixed_step_solve(anode: ModuleType) -> None:
    task = load_task("lorenz-forecast")
    torch.manual_seed(0)
    tight = anode.build_anode(task, rtol=1e-7, atol=1e-9)
    fine = anode.build_anode(task, method="rk4", step_size=task.dt / 8)
    fine.load_state_dict(tight.state_dict())
    u0, t = random_state(task, 3), grid(task, 11)
    with torch.no_grad():
        torch.testing.assert_close(tight(u0, t), fine(u0, t), rtol=0, atol=1e-4)
        loose = anode.build_anode(task, rtol=1e-2, atol=1e-2)
        loose.load_state_dict(tight.state_dict())
        loose(u0, t)
    assert 0 < loose.nfe < tight.nfe


@pytest.mark.parametrize("name", ["lorenz-forecast", "heat-classify"])
def test_adjoint_gradients_match_direct_ones_and_count_backward_nfe(anode: ModuleType, name: str) -> None:
    task = load_task(name)
    torch.manual_seed(0)
    direct = anode.build_anode(task, rtol=1e-6, atol=1e-8)
    adjoint = anode.build_anode(task, rtol=1e-6, atol=1e-8, adjoint=True)
    adjoint.load_state_dict(direct.state_dict())
    grads = []
    for model in (direct, adjoint):
        if task.kind == "forecast":
            out = model(random_state(task, 2), grid(task, 4))
            loss = out[:, 1:].pow(2).mean()
        else:
            out = model(torch.randn(2, task.n_times, *task.state_shape, generator=torch.Generator().manual_seed(2)))
            loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 3]))
        before = model.nfe
        loss.backward()
        grads.append((model.nfe - before, [p.grad for p in model.parameters()]))
    (nfe_direct, g_direct), (nfe_adjoint, g_adjoint) = grads
    assert nfe_direct == 0 and nfe_adjoint > 0
    for a, b in zip(g_direct, g_adjoint):
        assert (b - a).norm() <= 1e-3 * a.norm()


@pytest.mark.parametrize("name", TASKS)
def test_gradients_reach_every_parameter(anode: ModuleType, name: str) -> None:
    task = load_task(name)
    model = anode.build_anode(task, method="rk4")
    if task.kind == "forecast":
        loss = model(random_state(task, 2), grid(task, 4))[:, 1:].pow(2).mean()
    else:
        loss = model(torch.randn(2, task.n_times, *task.state_shape)).logsumexp(dim=1).mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_periodic_field_forecast_commutes_with_shifts(anode: ModuleType) -> None:
    task = load_task("ks-forecast")
    model = anode.build_anode(task, method="rk4")
    u0, t = random_state(task, 2), grid(task, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(u0.roll(7, dims=-1), t), model(u0, t).roll(7, dims=-1), rtol=1e-5, atol=1e-5)


def test_hparams_are_the_resolved_values_and_weights_load_with_weights_only(anode: ModuleType, tmp_path: Path) -> None:
    task = load_task("heat-classify")
    model = anode.build_anode(task, augment_dim=3, method="bosh3")
    assert model.hparams == {
        "augment_dim": 3, "width": 16, "depth": 2, "method": "bosh3", "rtol": 1e-3, "atol": 1e-4,
        "latent": 16, "adjoint": False, "max_num_steps": 100_000, "state_scale": 1.0, "field": "conv",
    }
    assert json.loads(json.dumps(model.hparams)) == model.hparams
    assert anode.build_anode(load_task("lorenz-forecast"), method="rk4").hparams["state_scale"] == 10.0
    torch.save(model.state_dict(), tmp_path / "w.pt")
    fresh = anode.build_anode(task, augment_dim=3, method="bosh3")
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x = torch.randn(2, task.n_times, *task.state_shape)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    assert anode.build_anode.task_kinds == ("forecast", "classify")


@pytest.mark.parametrize(
    "name, hparams, needle",
    [
        ("lorenz-forecast", {"augment_dim": -1}, "augment_dim"),
        ("lorenz-forecast", {"augment_dim": 1.5}, "augment_dim"),
        ("heat-forecast", {"width": 0}, "width"),
        ("heat-forecast", {"depth": True}, "depth"),
        ("ks-classify", {"latent": 0}, "latent"),
        ("ks-forecast", {"latent": 8}, "latent"),
        ("lorenz-forecast", {"method": "dopri"}, "method"),
        ("lorenz-forecast", {"method": "rk4", "rtol": 1e-4}, "rtol"),
        ("lorenz-forecast", {"step_size": 0.01}, "step_size"),
        ("lorenz-forecast", {"method": "euler", "step_size": -0.1}, "step_size"),
        ("lorenz-forecast", {"atol": float("nan")}, "atol"),
        ("lorenz-classify", {"adjoint": "yes"}, "adjoint"),
        ("lorenz-classify", {"state_scale": 0}, "state_scale"),
    ],
)
def test_bad_hyperparameter_values_raise_value_error_naming_them(anode: ModuleType, name: str, hparams: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        anode.build_anode(load_task(name), **hparams)


def test_every_argument_is_declared(anode: ModuleType) -> None:
    # Its own keywords, then the solver settings it passes through to odebench.toolkit.Solver.
    params = [p for p in list(inspect.signature(anode.build_anode).parameters.values())[1:] if p.kind == p.KEYWORD_ONLY]
    params += [p for p in inspect.signature(Solver).parameters.values() if p.name != "label"]
    declared = {hp.name: hp for hp in anode.build_anode.hyperparameters}
    assert sorted(declared) == sorted(p.name for p in params)
    for p in params:
        hp = declared[p.name]
        assert hp.allowed and (hp.default == p.default if p.default is not None else hp.default is None and hp.default_note), p.name


@pytest.mark.parametrize("hparams", [{"rtol": 1e-9, "atol": 1e-11}, {"method": "rk4", "step_size": 1e-5}])
def test_the_step_limit_raises_solver_step_limit_error(anode: ModuleType, hparams: dict) -> None:
    task = load_task("lorenz-forecast")
    torch.manual_seed(0)
    model = anode.build_anode(task, max_num_steps=3, **hparams)
    with torch.no_grad():
        model.ode.field.net[-1].weight.mul_(100.0)  # a field fast enough to need many steps
    with pytest.raises(SolverStepLimitError, match="anode: .*max_num_steps=3") as info:
        model(random_state(task, 2), grid(task, 11))
    assert not isinstance(info.value, AssertionError)


def test_unknown_hyperparameter_raises_type_error(anode: ModuleType) -> None:
    with pytest.raises(TypeError, match="augment_dims"):
        anode.build_anode(load_task("lorenz-forecast"), augment_dims=2)


def test_wrong_input_shapes_raise_value_error(anode: ModuleType) -> None:
    task = load_task("heat-classify")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 11, 64\) for task 'heat-classify', got \(2, 12, 64\)"):
        anode.build_anode(task)(torch.randn(2, 12, 64))
    task = load_task("lorenz-forecast")
    with pytest.raises(ValueError, match="u0 must have shape"):
        anode.build_anode(task)(torch.randn(2, 4), grid(task, 3))


# ----------------------------------------------------------------------------- installed for real


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _make_venv(where: Path, env: dict[str, str]) -> Path:
    """A virtual environment layered over this interpreter's packages; returns its python.

    ``--system-site-packages`` reaches the base interpreter's packages only; when this
    interpreter is itself a virtual environment, its site directories are added through
    a ``.pth`` file, so the editable odebench, torch, pip and setuptools are all visible.
    Without a pip of its own (``--without-pip``), the venv runs the visible one, which
    installs into the venv: nothing is downloaded.
    """
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    probe = "import json, sys, sysconfig; print(json.dumps([sysconfig.get_paths()['purelib'], sys.path]))"
    purelib, venv_path = json.loads(_run([str(python), "-c", probe], where, env).stdout)
    missing = [d for d in site.getsitepackages() if d not in venv_path and Path(d).is_dir()]
    if missing:
        Path(purelib, "_parent_environment.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in missing))
    return python


def test_installed_example_runs_through_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    work = tmp_path / "work"
    work.mkdir()
    python = _make_venv(tmp_path / "venv", env)
    shown = _run([str(python), "-c", "import sys, odebench; print(odebench.__file__); print(sys.prefix)"], work, env).stdout.split()
    assert Path(shown[0]) == Path(odebench.__file__), "the venv must see the odebench under test"
    assert Path(shown[1]) == tmp_path / "venv"

    source = tmp_path / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    before = sorted(p.relative_to(PLUGIN) for p in PLUGIN.rglob("*") if "__pycache__" not in p.parts)
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", str(source)], work, env)
    assert sorted(p.relative_to(PLUGIN) for p in PLUGIN.rglob("*") if "__pycache__" not in p.parts) == before
    cli = [str(python), "-m", "odebench.cli"]

    listing = _run([*cli, "list", "models"], work, env).stdout
    (line,) = [ln for ln in listing.splitlines() if ln.split()[:1] == ["anode"]]
    assert f"{DIST} 0.1.0" in line and "odebench_example.models:build_anode" in line
    assert "neural-ode" in listing  # the built-ins come through the same entry-point group

    report = _run([*cli, "validate", "anode"], work, env).stdout
    assert "result: passed" in report
    assert sorted(ln.split()[1] for ln in report.splitlines() if ln.strip().startswith("OK ")) == sorted(TASKS)

    results = tmp_path / "runs" / "mine"
    _run([*cli, "run", "--model", "anode", "--task", "lorenz-forecast,heat-classify", "--profile", "quick", "--results", str(results)], work, env)
    records = {json.loads(p.read_text())["task"]["name"]: json.loads(p.read_text()) for p in results.glob("*.json")}
    assert set(records) == {"lorenz-forecast", "heat-classify"}
    for name, rec in records.items():
        assert rec["status"] == "ok", rec["error"]
        assert rec["model"]["distribution"] == DIST and rec["model"]["version"] == "0.1.0"
        assert rec["model"]["hparams"]["method"] == "dopri5" and rec["model"]["hparams"]["field"] == ("mlp" if name.startswith("lorenz") else "conv")
        assert rec["cost"]["nfe_forward"] > 0 and rec["cost"]["params"] > 0
        state = torch.load(results / rec["weights"], weights_only=True)
        assert all(isinstance(v, torch.Tensor) and torch.isfinite(v).all() for v in state.values())
    assert 0.0 <= records["heat-classify"]["metrics"]["accuracy"] <= 1.0
    assert records["lorenz-forecast"]["metrics"]["vpt"] > 0

    # the analysis rebuilds the plugin's model through the entry points and loads its weights
    _run([*cli, "analyze", "--results", str(results), "--set", "n_rollouts=2", "--set", "long_time=20", "--set", "burn_in=2"], work, env)
    (analysed,) = results.glob("lorenz-forecast__anode__*.analysis.json")
    analysis = json.loads(analysed.read_text())
    assert analysis["status"] == "ok", analysis["error"]
    assert analysis["robustness"]["reproduces_record"] is True
    assert analysis["lyapunov"]["regime"] in ("chaotic", "cycle", "fixed point", "contracting", "diverged")
    assert {v["status"] for k, v in analysis["robustness"]["variants"].items() if k != "native"} == {"n/a"}  # no with_discretisation

    board = results / "LEADERBOARD.md"
    _run([*cli, "leaderboard", "--results", str(results), "--out", str(board)], work, env)
    text = board.read_text()
    assert "## lorenz-forecast" in text and "## heat-classify" in text
    assert sum("| anode" in ln for ln in text.splitlines()) >= 2
