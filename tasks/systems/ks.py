"""Kuramoto–Sivashinsky u_t + u u_x + u_xx + ν u_xxxx = 0 on a periodic domain [0, L).

The system contributes only what differs from any other ETDRK4 problem (see
``_etdrk.py``): its linear operator k² − νk⁴ and its nonlinear term −½ik·F[u²].
Everything runs on real batches ``(B, N)`` through ``rfft``.

Twin trajectories (Benettin's method with one vector) give finite-time and long-time
Lyapunov exponents, and a chaos screen: a state that has settled on an equilibrium,
travelling wave or periodic orbit shows no exponential separation and is redrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._etdrk import ETDRK4
from ._fft import irfft, rfft
from ._spectral import random_fourier_field, wavenumbers

__all__ = [
    "KS_LAMBDA1",
    "KuramotoSivashinsky",
    "simulate_ks",
    "finite_time_lyapunov",
    "ks_lyapunov",
    "ScreenConfig",
    "ChaoticWindows",
    "WindowRequest",
    "chaotic_windows",
    "chaotic_window_sets",
]

#: Largest Lyapunov exponent of KS at L = 22, N = 64, per time unit, as integrated by ETDRK4
#: with h = 0.05. Measured with `ks_lyapunov(22.0, 64, h=0.05, transient=1000.0)`: 64
#: trajectories × 5000 time units (seed 101) and 64 × 15000 (seed 103) pool to 0.04843 ± 0.00015
#: (standard error over trajectories); at h = 0.25, 64 × 20000 (seed 102) gives 0.04863 ± 0.00016.
#: Published values: 0.0473 (N = 64, dt = 0.25) to 0.0487 (N = 128, dt = 0.1).
KS_LAMBDA1 = 0.0484


class KuramotoSivashinsky:
    """KS on [0, ``length``) with ``n_points`` grid points, in ``rfft`` coefficients.

    ``length`` and ``nu`` are scalars or arrays of shape ``(B,)``, one per trajectory of a
    batch. Wavenumbers follow Kassam & Trefethen: the Nyquist mode has k = 0, so it and
    the mean (k = 0) are constants of the motion.
    """

    def __init__(self, length: float | np.ndarray = 22.0, n_points: int = 64, nu: float | np.ndarray = 1.0) -> None:
        length = np.asarray(length, dtype=np.float64)
        nu = np.asarray(nu, dtype=np.float64)
        if length.ndim > 1 or nu.ndim > 1:
            raise ValueError("length and nu must be scalars or 1-D arrays with one value per trajectory")
        if not np.all(length > 0) or not np.all(nu > 0):
            raise ValueError(f"length and nu must be positive, got length={length} and nu={nu}")
        unit = wavenumbers(n_points, 1.0)[: n_points // 2 + 1]
        self.n_points = int(n_points)
        self.length = length
        self.nu = nu
        self.k = unit / (length[:, None] if length.ndim else length)
        self.linear_op = self.k**2 - (nu[:, None] if nu.ndim else nu) * self.k**4
        self._g = -0.5j * self.k
        self._steppers: dict[tuple[float, int], ETDRK4] = {}

    def nonlinear(self, v: np.ndarray) -> np.ndarray:
        """𝒩(v) = −½ik·F[(F⁻¹v)²], the conservative form of −u u_x."""
        return self._g * self.square(v)

    def square(self, v: np.ndarray) -> np.ndarray:
        """F[(F⁻¹v)²]: the nonlinear term before its factor −½ik."""
        u = irfft(v, self.n_points)
        np.multiply(u, u, out=u)
        return rfft(u)

    def stepper(self, h: float, n_contour: int = 32) -> ETDRK4:
        """An :class:`ETDRK4` stepper of step ``h`` for this system (built once per ``h``)."""
        key = (float(h), int(n_contour))
        if key not in self._steppers:
            self._steppers[key] = ETDRK4(self.linear_op, self.square, h, n_contour, nonlinear_scale=self._g)
        return self._steppers[key]

    def to_fourier(self, u: np.ndarray) -> np.ndarray:
        return np.fft.rfft(np.asarray(u, dtype=np.float64), axis=-1)

    def to_physical(self, v: np.ndarray) -> np.ndarray:
        return np.fft.irfft(v, n=self.n_points, axis=-1)


def _steps_per(interval: float, h: float, what: str, unit: str = "the step h") -> int:
    """How many ``h`` make ``interval``; ``ValueError`` unless a positive whole number."""
    n = round(interval / h)
    if n < 1 or abs(n * h - interval) > 1e-9 * max(1.0, interval):
        raise ValueError(f"{what} = {interval} must be a positive whole multiple of {unit} = {h}")
    return n


def simulate_ks(u0: np.ndarray, length: float | np.ndarray, dt_sample: float, n_samples: int, h: float, *, nu: float | np.ndarray = 1.0) -> np.ndarray:
    """Integrate KS from ``u0`` ``(B, N)`` and return ``(B, n_samples, N)`` float64 samples.

    Samples are ``dt_sample`` apart, the first one is ``u0`` itself; the ETDRK4 step ``h``
    must divide ``dt_sample``.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim != 2:
        raise ValueError(f"u0 must have shape (batch, n_points), got {u0.shape}; use u0[None] for one trajectory")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    system = KuramotoSivashinsky(length, u0.shape[1], nu)
    stepper = system.stepper(h)
    per = _steps_per(dt_sample, h, "dt_sample")
    out = np.empty((u0.shape[0], n_samples, u0.shape[1]))
    out[:, 0] = u0
    v = system.to_fourier(u0)
    for i in range(1, n_samples):
        v = stepper.advance(v, per)
        out[:, i] = system.to_physical(v)
    return out


# --- Twin trajectories: Lyapunov exponents and the chaos screen ----------------------


def _perturbation(rng: np.random.Generator, shape: tuple[int, ...], n_points: int) -> np.ndarray:
    """Random unit-norm perturbations (physical L2 norm) without mean or Nyquist component.

    Both excluded modes are constants of the motion, so a separation there neither grows
    nor decays and would only dilute the measured growth.
    """
    d = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    d[..., 0] = 0.0
    d[..., -1] = 0.0
    u = np.fft.irfft(d, n=n_points, axis=-1)
    return np.fft.rfft(u / np.linalg.norm(u, axis=-1, keepdims=True), axis=-1)


_TRANSIENT_H = 0.25


class _TwinRun:
    """A batch of trajectories, each with a twin ``eps`` away that is pulled back to distance
    ``eps`` every renormalisation interval; the log-growth of every interval is kept with its
    time span, so the exponent over any stretch can be read off afterwards."""

    def __init__(self, system: KuramotoSivashinsky, v: np.ndarray, eps: float, direction: np.ndarray) -> None:
        self.system = system
        self.eps = eps
        self.pair = np.stack([v, v + eps * direction])
        self.time = 0.0
        self._mark = 0.0
        self._spans: list[tuple[float, float]] = []
        self._growth: list[np.ndarray] = []

    def _renormalise(self) -> None:
        v, twin = self.pair
        dist = np.linalg.norm(self.system.to_physical(twin - v), axis=-1)
        self._spans.append((self._mark, self.time))
        self._growth.append(np.log(dist / self.eps))
        self.pair[1] = v + (twin - v) * (self.eps / dist)[:, None]
        self._mark = self.time

    def coast(self, duration: float, stepper: ETDRK4, renorm_every: float) -> None:
        """Advance both by ``duration`` (a whole number of renormalisation intervals)."""
        per = _steps_per(renorm_every, stepper.h, "renorm_every")
        for _ in range(_steps_per(duration, renorm_every, "time", "renorm_every")):
            self.pair = stepper.advance(self.pair, per)
            self.time += renorm_every
            self._renormalise()

    def store(self, n_samples: int, spacing: np.ndarray, stepper: ETDRK4, n_steps: int) -> np.ndarray:
        """Record ``n_samples`` states ``spacing`` steps apart (one spacing per row), float32.

        The state is first rounded to float32, so the stored first sample is exactly the
        state the window was integrated from. Only the trajectory itself is integrated at the
        window's (fine) step: the twin would double that work for an exponent nobody reads,
        since the screen measures after the window. The window is left out of the exponent's
        record, and at its end the twin is re-attached ``eps`` away along the separation it
        had at the window's start (the screen then aligns it, see ``ScreenConfig.align_time``).
        Every row runs ``n_steps`` steps, at least its last sample's.
        """
        n_points = self.system.n_points
        start = self.system.to_physical(self.pair[0]).astype(np.float32)
        separation = self.pair[1] - self.pair[0]
        v = self.system.to_fourier(start)
        out = np.empty((start.shape[0], n_samples, n_points), dtype=np.float32)
        out[:, 0] = start
        for j in range(1, n_steps + 1):
            v = stepper.step(v)
            rows = np.flatnonzero((j % spacing == 0) & (j // spacing < n_samples))
            if rows.size:
                out[rows, j // spacing[rows]] = self.system.to_physical(v[rows])
        dist = np.linalg.norm(self.system.to_physical(separation), axis=-1)
        self.pair = np.stack([v, v + separation * (self.eps / dist)[:, None]])
        self.time += n_steps * stepper.h
        self._mark = self.time
        return out

    def exponent(self, start: float, duration: float) -> np.ndarray:
        """Finite-time Lyapunov exponent ``(B,)`` over the intervals inside [start, start + duration]."""
        spans = np.array(self._spans)
        inside = (spans[:, 0] >= start - 1e-9) & (spans[:, 1] <= start + duration + 1e-9)
        if not inside.any():
            raise ValueError(f"no renormalisation interval lies in [{start}, {start + duration}]")
        # One row per trajectory, summed along its own contiguous row: the rounding of a sum
        # over axis 0 depends on how many columns there are, so a trajectory's exponent
        # would depend on the batch it ran in.
        growth = np.ascontiguousarray(np.stack(self._growth)[inside].T)
        return growth.sum(axis=-1) / float(np.sum(spans[inside, 1] - spans[inside, 0]))


def finite_time_lyapunov(system: KuramotoSivashinsky, v: np.ndarray, h: float, time: float, *, renorm_every: float = 1.0, eps: float = 1e-8, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Largest finite-time Lyapunov exponent of each trajectory in ``v`` over ``time``.

    A twin starts ``eps`` away (physical L2 norm) from each state and is pulled back to
    that distance every ``renorm_every`` time units (Benettin's method with one vector).
    Returns the advanced coefficients and the exponents ``(B,)`` per time unit.
    """
    v = np.asarray(v)
    if v.ndim != 2:
        raise ValueError(f"v must hold rfft coefficients of shape (batch, n_points // 2 + 1), got {v.shape}")
    rng = np.random.default_rng(0) if rng is None else rng
    run = _TwinRun(system, v, eps, _perturbation(rng, v.shape, system.n_points))
    run.coast(time, system.stepper(h), renorm_every)
    return run.pair[0], run.exponent(0.0, time)


def ks_lyapunov(length: float = 22.0, n_points: int = 64, *, nu: float = 1.0, n_trajectories: int = 8, time: float = 2000.0, h: float = 0.25, transient: float = 1000.0, renorm_every: float = 1.0, seed: int = 0) -> np.ndarray:
    """Largest Lyapunov exponent of KS: one estimate per trajectory, ``(n_trajectories,)``.

    Each trajectory starts from a random smooth field, discards ``transient`` time units
    and then measures the twin-trajectory growth over ``time`` with ETDRK4 step ``h``.
    Their mean is the estimate; their spread over √n its statistical error.
    """
    if n_trajectories < 1 or not time > 0 or transient < 0:
        raise ValueError(f"need n_trajectories >= 1, time > 0 and transient >= 0; got {n_trajectories}, {time}, {transient}")
    rng = np.random.default_rng(seed)
    system = KuramotoSivashinsky(length, n_points, nu)
    v = system.to_fourier(random_fourier_field(rng, n_trajectories, n_points, min(8, n_points // 2 - 1)))
    if transient > 0:  # accuracy is irrelevant here: the large step the data generator uses too
        v = system.stepper(_TRANSIENT_H).advance(v, _steps_per(transient, _TRANSIENT_H, "transient", "the transient step"))
    return finite_time_lyapunov(system, v, h, time, renorm_every=renorm_every, rng=rng)[1]


@dataclass(frozen=True)
class ScreenConfig:
    """How screened windows are produced.

    Each trajectory starts from a random smooth zero-mean field (Fourier modes
    1..``ic_cutoff``, max |u| = ``ic_max_abs``) and runs ``transient`` time units with step
    ``transient_h``, discarded, so accuracy is irrelevant there. Windows are stored with
    the accurate step ``h``; between windows of one trajectory and after the last, the
    large step is used again. A twin trajectory ``eps`` away, renormalised every
    ``renorm_every`` time units, gives the finite-time Lyapunov exponent over the
    ``screen_time`` units that follow each window (after ``align_time`` units that let the
    twin, re-attached at the window's end, turn into the most unstable direction again);
    below ``min_exponent`` the window is redrawn. The twin only follows at the large step:
    within a window it would double the accurate integration's cost. Screening after the
    window rather than over it is deliberate: an attracting
    equilibrium, travelling wave or periodic orbit is never left again, so a trajectory
    still chaotic after the window was chaotic throughout it, whereas an average over the
    window itself can hide a collapse near its end.
    """

    n_points: int = 64
    h: float = 0.05
    transient: float = 1000.0
    transient_h: float = 0.25
    screen_time: float = 200.0
    min_exponent: float = 0.01
    renorm_every: float = 1.0
    ic_cutoff: int = 8
    ic_max_abs: float = 1.0
    eps: float = 1e-8
    max_rounds: int = 20
    align_time: float = 20.0

    def __post_init__(self) -> None:
        for name in ("h", "transient", "transient_h", "screen_time", "renorm_every", "ic_max_abs", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ScreenConfig.{name} must be positive, got {getattr(self, name)}")
        if not self.align_time >= 0:
            raise ValueError(f"ScreenConfig.align_time must be >= 0, got {self.align_time}")
        if self.align_time:
            _steps_per(self.align_time, self.renorm_every, "ScreenConfig.align_time", "ScreenConfig.renorm_every")
        if self.max_rounds < 1:
            raise ValueError(f"ScreenConfig.max_rounds must be >= 1, got {self.max_rounds}")
        _steps_per(self.renorm_every, self.h, "ScreenConfig.renorm_every", "ScreenConfig.h")
        _steps_per(self.renorm_every, self.transient_h, "ScreenConfig.renorm_every", "ScreenConfig.transient_h")


@dataclass(frozen=True)
class ChaoticWindows:
    """Screened windows and what the screen saw.

    ``u``: ``(n, n_samples, N)`` float32, ``u[:, 0]`` exactly the state each window was
    integrated from; ``exponent``: the finite-time Lyapunov exponent over the screen that
    follows each window;
    ``n_replaced``: how many candidate windows failed the screen and were redrawn.
    """

    u: np.ndarray
    exponent: np.ndarray
    n_replaced: int


@dataclass(frozen=True)
class WindowRequest:
    """One set of windows for :func:`chaotic_window_sets`: its own generator, how many windows
    and their sample spacing (one value, or one per window)."""

    rng: np.random.Generator
    n: int
    dt_sample: float | np.ndarray


def _candidate_windows(rngs: Sequence[np.random.Generator], system: KuramotoSivashinsky, spacings: Sequence[np.ndarray], n_samples: int, gap: float, cfg: ScreenConfig, window_steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Trajectories for several generators in one batch, one per row of each ``spacing``
    ``(n_traj, per_trajectory)``: (windows, exponents) per generator.

    Each generator draws what it would draw alone, in the same order (its starts, then its
    twins' directions), every window lasts ``window_steps`` accurate steps whatever the
    batch holds, and NumPy's FFT and arithmetic treat every row of a batch alike, so a
    generator's windows do not depend on what else is in the batch.
    """
    sizes = [int(sp.shape[0]) for sp in spacings]
    spacing = np.concatenate(spacings)
    n_traj, per_trajectory = spacing.shape
    u0 = np.concatenate([random_fourier_field(rng, k, cfg.n_points, cfg.ic_cutoff, cfg.ic_max_abs) for rng, k in zip(rngs, sizes)])
    coarse = system.stepper(cfg.transient_h)
    fine = system.stepper(cfg.h)
    v = coarse.advance(system.to_fourier(u0), _steps_per(cfg.transient, cfg.transient_h, "ScreenConfig.transient", "ScreenConfig.transient_h"))
    direction = np.concatenate([_perturbation(rng, (k, v.shape[-1]), cfg.n_points) for rng, k in zip(rngs, sizes)])
    run = _TwinRun(system, v, cfg.eps, direction)
    windows = np.empty((n_traj, per_trajectory, n_samples, cfg.n_points), dtype=np.float32)
    ends = []
    for k in range(per_trajectory):
        if k:
            run.coast(gap, coarse, cfg.renorm_every)
        windows[:, k] = run.store(n_samples, spacing[:, k], fine, window_steps)
        ends.append(run.time)
    after = cfg.align_time + cfg.screen_time
    run.coast(cfg.renorm_every * np.ceil(after / cfg.renorm_every - 1e-9), coarse, cfg.renorm_every)
    exps = np.stack([run.exponent(end + cfg.align_time, cfg.screen_time) for end in ends], axis=1)
    cuts = np.cumsum(sizes)[:-1]
    return list(zip(np.split(windows, cuts), np.split(exps, cuts)))


def chaotic_windows(rng: np.random.Generator, n: int, n_samples: int, dt_sample: float | np.ndarray, *, per_trajectory: int = 1, gap: float = 0.0, length: float = 22.0, nu: float = 1.0, config: ScreenConfig = ScreenConfig()) -> ChaoticWindows:
    """``n`` KS windows of ``n_samples`` samples, each screened for chaos.

    ``dt_sample`` is the sample spacing, one value or one per window (each a multiple of
    ``config.h``). With ``per_trajectory`` > 1 consecutive windows come from one trajectory,
    ``gap`` time units apart, which shares the cost of its transient. Windows that fail the
    screen are redrawn from the same ``rng``, so the result is a deterministic function of
    the generator's state.
    """
    return chaotic_window_sets([WindowRequest(rng, n, dt_sample)], n_samples, per_trajectory=per_trajectory, gap=gap, length=length, nu=nu, config=config)[0]


class _Pending:
    """The bookkeeping of one request across the screen's rounds."""

    def __init__(self, request: WindowRequest, n_samples: int, per_trajectory: int, config: ScreenConfig) -> None:
        if request.n < 1:
            raise ValueError(f"need n >= 1 windows, got {request.n}")
        dt = np.broadcast_to(np.asarray(request.dt_sample, dtype=np.float64), (request.n,))
        self.spacing = np.array([_steps_per(float(d), config.h, "dt_sample", "ScreenConfig.h") for d in dt])
        self.request, self.per_trajectory = request, per_trajectory
        self.u = np.empty((request.n, n_samples, config.n_points), dtype=np.float32)
        self.exponent = np.empty(request.n)
        self.pending = np.arange(request.n)
        self.replaced = 0
        self.slots = np.empty((0, per_trajectory), dtype=int)

    def candidates(self) -> np.ndarray:
        """The spacing of this round's candidates, one row per trajectory (pending windows in order)."""
        n_traj = -(-self.pending.size // self.per_trajectory)
        flat = np.full(n_traj * self.per_trajectory, -1)
        flat[: self.pending.size] = self.pending
        self.slots = flat.reshape(n_traj, self.per_trajectory)
        return self.spacing[np.maximum(self.slots, 0)]

    def take(self, windows: np.ndarray, exps: np.ndarray, min_exponent: float) -> None:
        """Keep the candidates that passed; what failed stays pending, to be redrawn."""
        used = self.slots >= 0
        ok = used & (exps >= min_exponent)
        self.u[self.slots[ok]] = windows[ok]
        self.exponent[self.slots[ok]] = exps[ok]
        self.pending = np.sort(self.slots[used & ~ok])
        self.replaced += self.pending.size


def chaotic_window_sets(
    requests: Sequence[WindowRequest], n_samples: int, *, per_trajectory: int = 1, gap: float = 0.0, length: float = 22.0, nu: float = 1.0,
    config: ScreenConfig = ScreenConfig(), max_dt_sample: float | None = None,
) -> list[ChaoticWindows]:
    """:func:`chaotic_windows` for several requests at once, integrated as one batch.

    Every window's accurate stage lasts ``max_dt_sample`` × (``n_samples`` − 1) (default:
    the largest spacing requested), so with the same ``max_dt_sample`` each request's
    windows are what it draws alone, bit for bit (see :func:`_candidate_windows`):
    batching only spreads the fixed cost of every array operation, which on batches of
    tens of trajectories is most of a step.
    """
    if n_samples < 1 or per_trajectory < 1:
        raise ValueError(f"need n_samples and per_trajectory >= 1, got {n_samples}, {per_trajectory}")
    if not requests:
        raise ValueError("no window request given")
    if per_trajectory > 1:
        _steps_per(gap, config.renorm_every, "gap (between windows of one trajectory)", "ScreenConfig.renorm_every")
    system = KuramotoSivashinsky(length, config.n_points, nu)
    states = [_Pending(r, n_samples, per_trajectory, config) for r in requests]
    longest = max(int(st.spacing.max()) for st in states)
    if max_dt_sample is not None:
        allowed = _steps_per(float(max_dt_sample), config.h, "max_dt_sample", "ScreenConfig.h")
        if allowed < longest:
            raise ValueError(f"max_dt_sample = {max_dt_sample} is shorter than a requested dt_sample ({longest * config.h:g})")
        longest = allowed
    window_steps = longest * (n_samples - 1)
    for _ in range(config.max_rounds):
        active = [st for st in states if st.pending.size]
        if not active:
            break
        spacings = [st.candidates() for st in active]
        results = _candidate_windows([st.request.rng for st in active], system, spacings, n_samples, gap, config, window_steps)
        for st, (windows, exps) in zip(active, results):
            st.take(windows, exps, config.min_exponent)
    failed = sum(st.pending.size for st in states)
    if failed:
        total = sum(r.n for r in requests)
        raise RuntimeError(
            f"{failed} of {total} windows still failed the chaos screen after {config.max_rounds} rounds at "
            f"length={length}, nu={nu}: random starts there settle on non-chaotic states; choose a chaotic domain length"
        )
    return [ChaoticWindows(st.u, st.exponent, st.replaced) for st in states]
