"""Samplers against diffusers' schedulers, step for step, plus the properties diffusers can't check.

The peer schedulers run on exactly our noise table (their ``alphas_cumprod`` replaced by our float64
one, so the test compares solvers, not float32 cumulative products), with a fixed deterministic fake
network, and stochastic steps draw from identically seeded generators (both sides draw the same
noise in the same order). Where we deliberately differ from diffusers (docs/samplers.md) the test
pins our behaviour and shows the difference.
"""

from __future__ import annotations

import functools

import pytest
import torch

from twopaths.paradigms.samplers import (
    DDIM,
    DDPM,
    SAMPLERS,
    DPMSolverPP2M,
    Euler,
    Heun,
    dynamic_threshold,
    make_sampler,
    make_timesteps,
    sigma_to_t,
    t_to_sigma,
)
from twopaths.paradigms.schedule import NoiseSchedule

T = 1000
SHAPE = (2, 3, 4, 4)
STEPS = (10, 20, 50)
SPACINGS = ("leading", "linspace", "trailing")
SCHEDULES = ("linear", "cosine")
PEER_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
# diffusers' own np.array(tensor) calls, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

TOL = 1e-5  # one step from the same state
FREE_TOL = 1e-5  # whole free-running runs
# Euler/Heun on the cosine schedule start at sigma_max = 2.0e4: float32 rounding at that magnitude
# (~2e-3 absolute in the first steps, different on each side) survives to the end of a 10-step run (~5e-4)
FREE_TOL_HUGE_SIGMA = 1e-3


@pytest.fixture
def diffusers():
    """The peer, a test-only dependency: tests that need it skip without it, the others still run."""
    return pytest.importorskip("diffusers")


@functools.cache
def schedule(kind: str = "linear") -> NoiseSchedule:
    return NoiseSchedule.make(kind, T)


def fake_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth, deterministic stand-in for a network: a function of x_t and t only."""
    return 0.8 * x_t + 0.3 * torch.sin(3 * x_t + t.view(-1, *[1] * (x_t.ndim - 1)) / 250)


def peer(cls, kind: str, **kw):
    """A diffusers scheduler on our noise table."""
    s = schedule(kind)
    sched = cls(num_train_timesteps=T, trained_betas=s.betas.numpy(), **kw)
    sched.alphas_cumprod = s.alphas_cumprod.clone()
    return sched


def start(seed: int = 0) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs|, relative to the magnitude of theirs where it exceeds 1."""
    return float((ours - theirs).abs().max() / max(1.0, float(theirs.abs().max())))


def gen(seed: int | None) -> torch.Generator | None:
    return torch.Generator().manual_seed(seed) if seed is not None else None


def run_ours(sampler, x: torch.Tensor, seed: int | None = None) -> list[torch.Tensor]:
    """Our states after every step, through the public step() API."""
    g, out = gen(seed), []
    for i in range(sampler.steps):
        t = torch.full((x.shape[0],), sampler.model_time(i))
        x = sampler.step(fake_model(sampler.scale_model_input(x, i), t), i, x, generator=g)
        out.append(x)
    return out


def run_peer(sched, x: torch.Tensor, seed: int | None = None, **step_kw) -> list[torch.Tensor]:
    """The peer's state at the start of every whole step, then its result (Heun's second stage is
    part of a step)."""
    if seed is not None:
        step_kw["generator"] = gen(seed)
    states = []
    for t in sched.timesteps:
        if getattr(sched, "state_in_first_order", True):
            states.append(x)
        x_in = sched.scale_model_input(x, t)
        x = sched.step(fake_model(x_in, torch.full((x.shape[0],), float(t))), t, x, **step_kw).prev_sample
    return states + [x]


def compare_with_peer(ours, sched, x_T: torch.Tensor, seed: int | None = None, free_tol: float = FREE_TOL,
                      **step_kw) -> None:
    """Every step from the same state must agree to TOL (one step at a time from the peer's state,
    so float32 rounding of earlier steps is not counted twice); the free-running results to free_tol."""
    theirs = run_peer(sched, x_T, seed, **step_kw)
    assert len(theirs) == ours.steps + 1
    g = gen(seed)
    errs = [rel_err(ours.advance(fake_model, i, theirs[i], generator=g), theirs[i + 1]) for i in range(ours.steps)]
    assert max(errs) < TOL, f"step errors {['%.1e' % e for e in errs]}"
    g, x = gen(seed), x_T
    for i in range(ours.steps):
        x = ours.advance(fake_model, i, x, generator=g)
    assert rel_err(x, theirs[-1]) < free_tol


# ----------------------------------------------------------------------------- timesteps


@pytest.mark.parametrize("spacing", SPACINGS)
def test_make_timesteps_matches_diffusers(diffusers, spacing):
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
    for steps in (1, 2, 3, 7, 10, 15, 20, 25, 50, 100, 250, 999, 1000):
        sched.set_timesteps(steps)
        ours = make_timesteps(T, steps, spacing)
        assert ours.dtype == torch.long
        assert ours.tolist() == sched.timesteps.tolist(), (spacing, steps)


def test_make_timesteps_steps_offset_is_diffusers_convention(diffusers):
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, steps_offset=1, timestep_spacing="leading")
    sched.set_timesteps(50)
    ours = make_timesteps(T, 50, "leading", steps_offset=1)
    assert ours.tolist() == sched.timesteps.tolist()
    assert ours[0] == 981 and ours[-1] == 1  # Stable Diffusion's grid
    for spacing in ("linspace", "trailing"):  # offset applies to leading only, as in diffusers
        assert make_timesteps(T, 50, spacing, steps_offset=1).tolist() == make_timesteps(T, 50, spacing).tolist()


@pytest.mark.parametrize("spacing", ("linspace", "trailing"))
def test_make_timesteps_differs_from_diffusers_only_on_float_ties(diffusers, spacing):
    """Deliberate difference: exact integer rounding. diffusers' float64 arithmetic rounds some exact
    .5 ties the wrong way, and its trailing np.arange sometimes returns steps + 1 values ending in -1."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
    n_ties = n_extra = 0
    for steps in range(2, 130):
        ours = make_timesteps(T, steps, spacing)
        assert len(ours) == steps and len(set(ours.tolist())) == steps
        assert 0 <= int(ours.min()) and int(ours.max()) == T - 1
        sched.set_timesteps(steps)
        theirs = sched.timesteps.tolist()
        if len(theirs) == steps + 1:  # the arange overshoot
            assert theirs[-1] == -1
            theirs, n_extra = theirs[:-1], n_extra + 1
        for k, (a, b) in enumerate(zip(ours.tolist()[::-1], theirs[::-1])):
            if a != b:  # only where the exact value is a .5 tie
                num, den = (k * (T - 1), steps - 1) if spacing == "linspace" else (T * (k + 1), steps)
                assert 2 * (num % den) == den and abs(a - b) == 1, (steps, k, a, b)
                n_ties += 1
    assert n_ties > 0  # the difference is real (e.g. linspace 27 steps, trailing 48 steps)
    if spacing == "trailing":
        assert n_extra > 0  # e.g. 61 steps -> 62 timesteps in diffusers
        assert len(make_timesteps(T, 61, "trailing")) == 61


def test_make_timesteps_rejects_bad_arguments():
    for bad in (dict(steps=0), dict(steps=T + 1), dict(spacing="uniform"), dict(steps=T, steps_offset=1)):
        kw = dict(T=T, steps=10, spacing="leading") | bad
        with pytest.raises(ValueError):
            make_timesteps(**kw)


def test_previous_timestep_is_looked_up_in_the_list(diffusers):
    """Trailing with 3 steps of 1000 has uneven strides (333, 334): the step from 666 must land on
    332, not on 666 - 1000 // 3 = 333 (diffusers' DDIM stride arithmetic)."""
    s = schedule("linear")
    ddim = DDIM(s, 3, "trailing", clip=None)
    assert ddim.timesteps.tolist() == [999, 666, 332]
    assert ddim.prev_timesteps.tolist() == [666, 332, -1]
    assert DDPM(s, 3, "trailing").prev_timesteps.tolist() == [666, 332, -1]
    # the DDIM step (Song et al. eq. 12, eta = 0) written out with the looked-up abar
    x, i = start(), 1
    ab, ab_prev = s.alphas_cumprod[666].item(), s.alphas_cumprod[332].item()
    eps = fake_model(x, torch.full((2,), 666.0))
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
    want = ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps
    assert rel_err(ddim.step(eps, i, x), want) < TOL
    # diffusers' DDIMScheduler takes the stride and lands on 333 instead
    peer_ddim = peer(diffusers.DDIMScheduler, "linear", clip_sample=False, timestep_spacing="trailing")
    peer_ddim.set_timesteps(3)
    assert rel_err(peer_ddim.step(eps, 666, x).prev_sample, want) > 1e-4


# ----------------------------------------------------------------------------- DDPM


@pytest.mark.parametrize("kind", SCHEDULES + ("sigmoid",))
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("clip", (False, True))
def test_ddpm_matches_diffusers(diffusers, kind, steps, spacing, clip):
    sched = peer(diffusers.DDPMScheduler, kind, variance_type="fixed_small", clip_sample=clip,
                 timestep_spacing=spacing)
    sched.set_timesteps(steps)
    ours = DDPM(schedule(kind), steps, spacing, clip=1.0 if clip else None)
    assert ours.timesteps.tolist() == sched.timesteps.tolist()
    compare_with_peer(ours, sched, start(), seed=1)


@pytest.mark.parametrize("prediction", ("x0", "v"))
def test_ddpm_prediction_types_match_diffusers(diffusers, prediction):
    sched = peer(diffusers.DDPMScheduler, "linear", clip_sample=False, prediction_type=PEER_PREDICTION[prediction])
    sched.set_timesteps(20)
    ours = DDPM(schedule("linear"), 20, prediction=prediction, clip=None)
    compare_with_peer(ours, sched, start(), seed=3)


def test_ddpm_nonuniform_trailing_matches_diffusers(diffusers):
    """diffusers' DDPMScheduler (unlike its DDIM) looks the previous timestep up too: they agree."""
    for steps in (3, 7, 15):
        sched = peer(diffusers.DDPMScheduler, "linear", clip_sample=False, timestep_spacing="trailing")
        sched.set_timesteps(steps)
        ours = DDPM(schedule("linear"), steps, "trailing", clip=None)
        compare_with_peer(ours, sched, start(), seed=2)


def test_sample_equals_the_step_loop():
    s = schedule("linear")
    ddpm = DDPM(s, 10)
    seen = []
    x = ddpm.sample(fake_model, start(), generator=torch.Generator().manual_seed(5),
                    callback=lambda i, t, x_t, x0: seen.append((i, t, x0.abs().max().item())))
    assert torch.equal(x, run_ours(ddpm, start(), seed=5)[-1])
    assert [(i, t) for i, t, _ in seen] == list(enumerate(ddpm.timesteps.float().tolist()))
    assert all(m <= 1.0 for *_, m in seen)  # the callback's x0 estimate is the clipped one


# ----------------------------------------------------------------------------- DDIM


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", ("leading", "trailing"))
@pytest.mark.parametrize("eta", (0.0, 0.5))
def test_ddim_matches_diffusers(diffusers, kind, steps, spacing, eta):
    """Leading and trailing with these step counts have even strides, where diffusers' stride
    arithmetic is right (linspace: see test_ddim_linspace_*)."""
    sched = peer(diffusers.DDIMScheduler, kind, clip_sample=False, timestep_spacing=spacing)
    sched.set_timesteps(steps)
    ours = DDIM(schedule(kind), steps, spacing, clip=None, eta=eta)
    assert ours.timesteps.tolist() == sched.timesteps.tolist()
    compare_with_peer(ours, sched, start(), seed=1, eta=eta)


@pytest.mark.parametrize("prediction", ("eps", "x0", "v"))
@pytest.mark.parametrize("eps_from_clipped_x0", (True, False))
def test_ddim_prediction_types_and_clipping_match_diffusers(diffusers, prediction, eps_from_clipped_x0):
    sched = peer(diffusers.DDIMScheduler, "linear", clip_sample=True, prediction_type=PEER_PREDICTION[prediction],
                 timestep_spacing="trailing")
    sched.set_timesteps(20)
    ours = DDIM(schedule("linear"), 20, "trailing", prediction=prediction, clip=1.0, eta=0.5,
                eps_from_clipped_x0=eps_from_clipped_x0)
    compare_with_peer(ours, sched, start(), seed=4, eta=0.5, use_clipped_model_output=eps_from_clipped_x0)


@pytest.mark.parametrize("spacing,steps", [("linspace", 10), ("linspace", 20), ("trailing", 3), ("trailing", 7)])
def test_ddim_eta1_equals_diffusers_ddpm_on_uneven_strides(diffusers, spacing, steps):
    """DDIM at eta = 1 is DDPM's ancestral step (Song et al. sec. 4.1); diffusers' DDPM looks the
    previous timestep up, so it is an oracle for our DDIM on strides its DDIM gets wrong."""
    sched = peer(diffusers.DDPMScheduler, "cosine", clip_sample=True, timestep_spacing=spacing)
    sched.set_timesteps(steps)
    ours = DDIM(schedule("cosine"), steps, spacing, eta=1.0)  # clip=1.0, eps from the clipped x0
    compare_with_peer(ours, sched, start(), seed=6)


@pytest.mark.parametrize("spacing,steps", [("linspace", 10), ("linspace", 50), ("trailing", 7)])
def test_ddim_eta0_equals_first_order_dpm_solver(diffusers, spacing, steps):
    """DDIM at eta = 0 is DPM-Solver++1 (Lu et al. 2022b, sec. 4); diffusers' multistep solver at
    order 1 on our timesteps is a second oracle for uneven strides."""
    ours = DDIM(schedule("linear"), steps, spacing, clip=None)
    sched = peer(diffusers.DPMSolverMultistepScheduler, "linear", algorithm_type="dpmsolver++", solver_order=1)
    sched.set_timesteps(timesteps=ours.timesteps.tolist())
    compare_with_peer(ours, sched, start())


@pytest.mark.parametrize("steps", STEPS)
def test_ddim_linspace_differs_from_diffusers_stride(diffusers, steps):
    """Deliberate difference: diffusers' DDIMScheduler steps from t to t - T // steps, which is not the
    next linspace timestep (999 -> 899 instead of 888 with 10 steps); we follow the list."""
    sched = peer(diffusers.DDIMScheduler, "linear", clip_sample=False, timestep_spacing="linspace")
    sched.set_timesteps(steps)
    ours = DDIM(schedule("linear"), steps, "linspace", clip=None)
    assert ours.timesteps.tolist() == sched.timesteps.tolist()  # same grid, different steps on it
    assert rel_err(run_ours(ours, start())[-1], run_peer(sched, start())[-1]) > 1e-3
    assert ours.prev_timesteps[:-1].tolist() == ours.timesteps[1:].tolist()
    assert (ours.prev_timesteps[:-1] != ours.timesteps[:-1] - T // steps).any()


def test_ddim_eta_half_on_uneven_strides_is_eq_12_and_16():
    s = schedule("linear")
    ddim = DDIM(s, 7, "linspace", clip=None, eta=0.5)
    x = start()
    for i in range(ddim.steps):
        t, prev = int(ddim.timesteps[i]), int(ddim.prev_timesteps[i])
        ab, ab_prev = s.alphas_cumprod[t].item(), (s.alphas_cumprod[prev].item() if prev >= 0 else 1.0)
        eps = fake_model(x, torch.full((2,), float(t)))
        sigma = 0.5 * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5  # eq. 16
        z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(i))
        x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
        want = ab_prev**0.5 * x0 + (1 - ab_prev - sigma**2) ** 0.5 * eps + sigma * z  # eq. 12
        got = ddim.step(eps, i, x, generator=torch.Generator().manual_seed(i))
        assert rel_err(got, want) < TOL
        x = got


# ----------------------------------------------------------------------------- DPM-Solver++(2M)


def peer_dpm(diffusers, kind: str, timesteps: list[int], **kw):
    sched = peer(diffusers.DPMSolverMultistepScheduler, kind, algorithm_type="dpmsolver++", solver_order=2, **kw)
    sched.set_timesteps(timesteps=timesteps)
    return sched


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_dpmpp_matches_diffusers(diffusers, kind, steps, spacing):
    """On our timesteps (diffusers' solver places linspace/leading on its own steps + 1 grid, see
    test_dpmpp_spacing_is_the_shared_one)."""
    ours = DPMSolverPP2M(schedule(kind), steps, spacing, clip=None)
    sched = peer_dpm(diffusers, kind, ours.timesteps.tolist())
    compare_with_peer(ours, sched, start())


def test_dpmpp_spacing_is_the_shared_one(diffusers):
    """Deliberate difference: diffusers' DPMSolverMultistepScheduler spaces linspace and leading over
    steps + 1 points and drops t = 0; ours uses make_timesteps like every sampler. Trailing agrees."""
    for spacing in SPACINGS:
        sched = peer(diffusers.DPMSolverMultistepScheduler, "linear", timestep_spacing=spacing)
        sched.set_timesteps(10)
        same = sched.timesteps.tolist() == make_timesteps(T, 10, spacing).tolist()
        assert same == (spacing == "trailing"), spacing
    ours = DPMSolverPP2M(schedule("linear"), 20, "trailing", clip=None)
    sched = peer(diffusers.DPMSolverMultistepScheduler, "linear", algorithm_type="dpmsolver++",
                 timestep_spacing="trailing")
    sched.set_timesteps(20)
    compare_with_peer(ours, sched, start())


@pytest.mark.parametrize("prediction", ("x0", "v"))
def test_dpmpp_prediction_types_match_diffusers(diffusers, prediction):
    ours = DPMSolverPP2M(schedule("cosine"), 20, "trailing", prediction=prediction, clip=None)
    sched = peer_dpm(diffusers, "cosine", ours.timesteps.tolist(), prediction_type=PEER_PREDICTION[prediction])
    compare_with_peer(ours, sched, start())


@pytest.mark.parametrize("steps", (10, 20))
@pytest.mark.parametrize("lower_order_final", (True, False))
def test_dpmpp_final_sigma_min_and_lower_order_final(diffusers, steps, lower_order_final):
    ours = DPMSolverPP2M(schedule("linear"), steps, "trailing", clip=None, final_sigma="min",
                         lower_order_final=lower_order_final)
    sched = peer_dpm(diffusers, "linear", ours.timesteps.tolist(), final_sigmas_type="sigma_min",
                     lower_order_final=lower_order_final)
    compare_with_peer(ours, sched, start())
    assert ours._second[-1] == (not lower_order_final or steps >= 15)


def test_dpmpp_dynamic_threshold_matches_diffusers(diffusers):
    """Imagen's s = max(1, quantile) has no upper bound: diffusers' sample_max_value set out of reach."""
    ours = DPMSolverPP2M(schedule("linear"), 20, "trailing", dynamic_threshold=0.9)
    sched = peer_dpm(diffusers, "linear", ours.timesteps.tolist(), thresholding=True, dynamic_thresholding_ratio=0.9,
                     sample_max_value=1e6)
    compare_with_peer(ours, sched, start())
    got = run_ours(ours, start())
    plain = run_ours(DPMSolverPP2M(schedule("linear"), 20, "trailing", clip=None), start())
    assert rel_err(got[-1], plain[-1]) > 1e-2  # the thresholding did something


def test_dpmpp_restarts_its_history_at_step_zero():
    dpm = DPMSolverPP2M(schedule("linear"), 10, clip=None)
    first, second = run_ours(dpm, start()), run_ours(dpm, start())
    assert torch.equal(first[-1], second[-1])


# ----------------------------------------------------------------------------- Euler and Heun


def euler_peer(cls, kind, steps, spacing, karras, ours, **kw):
    sched = peer(cls, kind, timestep_spacing=spacing, use_karras_sigmas=karras, **kw)
    if spacing == "linspace" and not karras:  # diffusers' Euler/Heun don't round linspace (docs/samplers.md)
        sched.set_timesteps(timesteps=make_timesteps(T, steps, spacing).tolist())
    else:
        sched.set_timesteps(steps)
    return sched


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("karras", (False, True))
def test_euler_matches_diffusers(diffusers, kind, steps, spacing, karras):
    ours = Euler(schedule(kind), steps, spacing, clip=None, karras_sigmas=karras)
    sched = euler_peer(diffusers.EulerDiscreteScheduler, kind, steps, spacing, karras, ours)
    # the fractional timesteps from interpolating t over log sigma
    assert torch.allclose(ours.timesteps.float(), sched.timesteps, rtol=0, atol=1e-3)
    assert rel_err(ours.sigmas.float(), sched.sigmas) < TOL
    x_T = ours.init_noise(SHAPE, torch.Generator().manual_seed(0))
    compare_with_peer(ours, sched, x_T, free_tol=FREE_TOL_HUGE_SIGMA if kind == "cosine" else FREE_TOL)


@pytest.mark.parametrize("prediction", ("x0", "v"))
def test_euler_prediction_types_match_diffusers(diffusers, prediction):
    ours = Euler(schedule("linear"), 20, "trailing", prediction=prediction, clip=None)
    sched = euler_peer(diffusers.EulerDiscreteScheduler, "linear", 20, "trailing", False, ours,
                       prediction_type=PEER_PREDICTION[prediction])
    x_T = ours.init_noise(SHAPE, torch.Generator().manual_seed(0))
    compare_with_peer(ours, sched, x_T)


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("karras", (False, True))
def test_heun_matches_diffusers(diffusers, kind, steps, spacing, karras):
    ours = Heun(schedule(kind), steps, spacing, clip=None, karras_sigmas=karras)
    sched = euler_peer(diffusers.HeunDiscreteScheduler, kind, steps, spacing, karras, ours)
    assert len(sched.timesteps) == ours.nfe == 2 * steps - 1  # one evaluation per peer timestep
    compare_with_peer(ours, sched, ours.init_noise(SHAPE, torch.Generator().manual_seed(0)),
                      free_tol=FREE_TOL_HUGE_SIGMA if kind == "cosine" else FREE_TOL)


@pytest.mark.parametrize("prediction", ("eps", "x0", "v"))
def test_heun_prediction_types_and_clipping_match_diffusers(diffusers, prediction):
    ours = Heun(schedule("linear"), 10, "trailing", prediction=prediction, clip=1.0)
    sched = euler_peer(diffusers.HeunDiscreteScheduler, "linear", 10, "trailing", False, ours,
                       prediction_type=PEER_PREDICTION[prediction], clip_sample=True)
    compare_with_peer(ours, sched, ours.init_noise(SHAPE, torch.Generator().manual_seed(0)))


def test_heun_has_no_single_step():
    with pytest.raises(NotImplementedError):
        Heun(schedule(), 5).step(start(), 0, start())


def test_sigma_to_t_inverts_t_to_sigma_and_hits_table_timesteps():
    log_sigmas = schedule("cosine").sigmas().log()
    t = torch.tensor([0.0, 0.25, 17.5, 500.0, 998.9, 999.0], dtype=torch.float64)
    assert torch.allclose(sigma_to_t(t_to_sigma(t, log_sigmas), log_sigmas), t, atol=1e-9)
    whole = torch.arange(T, dtype=torch.float64)
    assert torch.allclose(sigma_to_t(log_sigmas.exp(), log_sigmas), whole, atol=1e-9)


# ----------------------------------------------------------------------------- properties of every sampler


ALL = [("ddpm", {}), ("ddim", {}), ("ddim", {"eta": 1.0}), ("dpmpp", {}), ("euler", {}), ("heun", {}),
       ("euler", {"karras_sigmas": True}), ("heun", {"karras_sigmas": True})]


@pytest.mark.parametrize("name,opts", ALL)
@pytest.mark.parametrize("prediction", ("eps", "v"))
@pytest.mark.parametrize("spacing", ("leading", "trailing"))
def test_true_noise_model_recovers_x0(name, opts, prediction, spacing):
    """A model that predicts the actual noise of a known x0 (for any x_t: the noise that explains it)
    makes every x0 estimate exact: deterministic samplers must stay on x_t = a x0 + s eps with the
    starting eps, and every sampler must end on x0."""
    s = schedule("linear")
    sampler = make_sampler(name, s, 10, spacing=spacing, prediction=prediction, **opts)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(SHAPE, generator=g) * 1.8 - 0.9
    eps0 = torch.randn(SHAPE, generator=g)
    log_sigmas = s.sigmas().log()

    def a_s(t):  # (B, 1, 1, 1) signal and noise scales at (fractional) t
        sig = t_to_sigma(t.double(), log_sigmas).float().view(-1, 1, 1, 1)
        a = (1 + sig**2).rsqrt()
        return a, sig * a

    def oracle(x_t, t):
        a, sd = a_s(t)
        eps = (x_t - a * x0) / sd
        return eps if prediction == "eps" else a * eps - sd * x0

    t0 = torch.full((SHAPE[0],), sampler.model_time(0))
    a, sd = a_s(t0)
    x_T = (a * x0 + sd * eps0) * sampler.init_noise_sigma  # the network's first input is a x0 + s eps0
    path = []
    out = sampler.sample(oracle, x_T, generator=torch.Generator().manual_seed(1),
                         callback=lambda i, t, x_t, x0_pred: path.append((t, x_t, x0_pred)))
    assert len(path) == sampler.steps
    assert (out - x0).abs().max() < 1e-4
    for t, x_t, x0_pred in path:
        assert (x0_pred - x0).abs().max() < 1e-3
        if not sampler.stochastic:
            a, sd = a_s(torch.full((SHAPE[0],), t))
            assert (x_t - (a * x0 + sd * eps0)).abs().max() < 1e-4


@pytest.mark.parametrize("name", SAMPLERS)
def test_nfe_counts_network_calls(name):
    sampler = make_sampler(name, schedule(), 7, spacing="trailing")
    calls = []
    sampler.sample(lambda x_t, t: calls.append(t) or fake_model(x_t, t), sampler.init_noise(SHAPE))
    assert len(calls) == sampler.nfe == (13 if name == "heun" else 7)
    assert all(c.dtype == torch.float32 and c.shape == (SHAPE[0],) for c in calls)


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_seed_gives_every_sampler_the_same_first_network_input(name):
    sampler = make_sampler(name, schedule(), 10, spacing="trailing")
    x_T = sampler.init_noise(SHAPE, torch.Generator().manual_seed(3))
    assert x_T.dtype == torch.float32
    assert torch.allclose(sampler.scale_model_input(x_T, 0), start(3), atol=1e-5)


def test_dynamic_threshold_is_imagen_sec_2_3():
    x0 = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) \
        * torch.tensor([0.1, 1.0, 2.0, 5.0]).view(4, 1, 1, 1)  # row 0 stays well inside [-1, 1]
    got = dynamic_threshold(x0, 0.95)
    s = torch.quantile(x0.flatten(1).abs(), 0.95, dim=1).clamp(min=1).view(4, 1, 1, 1)
    assert torch.allclose(got, torch.maximum(torch.minimum(x0, s), -s) / s)
    assert torch.equal(got[0], x0[0])  # s < 1 -> max(1, s) = 1 and nothing exceeds it
    assert got.abs().max() <= 1


def test_ddpm_dynamic_threshold_matches_diffusers(diffusers):
    sched = peer(diffusers.DDPMScheduler, "linear", thresholding=True, dynamic_thresholding_ratio=0.95,
                 sample_max_value=1e6, timestep_spacing="trailing")
    sched.set_timesteps(20)
    ours = DDPM(schedule("linear"), 20, "trailing", dynamic_threshold=0.95)
    compare_with_peer(ours, sched, start(), seed=1)


def test_zero_terminal_snr_needs_v_prediction():
    """Lin et al. 2024: with abar_{T-1} = 0 an eps model can't give x0 at t = T-1; v can."""
    s = NoiseSchedule.make("linear", T, zero_terminal_snr=True)
    for name in ("ddpm", "ddim", "dpmpp"):
        x = make_sampler(name, s, 10, spacing="trailing", prediction="v").sample(fake_model, start())
        assert torch.isfinite(x).all()
        with pytest.raises(ValueError, match="zero terminal SNR"):
            make_sampler(name, s, 10, spacing="trailing", prediction="eps")
    with pytest.raises(ValueError, match="finite sigma"):
        Euler(s, 10, "trailing", prediction="v")


def test_make_sampler_registry_and_errors():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmpp", "euler", "heun", "diffwave"}
    assert isinstance(make_sampler("ddim", schedule(), 5, eta=0.3), DDIM)
    with pytest.raises(ValueError, match="ddpm, ddim, dpmpp, euler, heun, diffwave"):
        make_sampler("plms", schedule(), 5)
    with pytest.raises(ValueError, match="eps, x0, v"):
        make_sampler("ddim", schedule(), 5, prediction="epsilon")
    with pytest.raises(TypeError):
        make_sampler("ddpm", schedule(), 5, eta=0.5)  # an option of another algorithm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", SAMPLERS)
def test_cuda_run_matches_cpu_run(name):
    """Float32 on the sample's device; a CPU generator gives the same noise for a CUDA sample."""
    sampler = make_sampler(name, schedule(), 10, spacing="trailing")
    x_T = sampler.init_noise(SHAPE, torch.Generator().manual_seed(0))
    cpu = sampler.sample(fake_model, x_T, generator=torch.Generator().manual_seed(1))
    gpu = sampler.sample(fake_model, x_T.cuda(), generator=torch.Generator().manual_seed(1))
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    assert rel_err(gpu.cpu(), cpu) < 1e-4


# ----------------------------------------------------------------------------- DiffWave's fast schedule


def _root_abar_at(kind: str, t: torch.Tensor) -> torch.Tensor:
    """sqrt(abar) of the training schedule linearly interpolated at fractional timesteps t."""
    root = schedule(kind).alphas_cumprod.double().sqrt()
    lo = t.floor().long().clamp(0, T - 2)
    return root[lo] + (t - lo) * (root[lo + 1] - root[lo])


@pytest.mark.parametrize("kind", SCHEDULES)
def test_diffwave_fast_steps_are_aligned_to_the_training_schedule(kind):
    """Each step's fractional timestep has the training noise level of DiffWave's inference chain
    (the t_align of appendix B), within the training schedule's range."""
    from twopaths.paradigms.samplers import DIFFWAVE_BETAS, DiffWaveFast

    sampler = DiffWaveFast(schedule(kind), 6)
    assert sampler.nfe == 6 and sampler.timesteps.shape == (6,) and bool((sampler.timesteps.diff() < 0).all())
    abar = torch.tensor([1 - b for b in DIFFWAVE_BETAS], dtype=torch.float64).cumprod(0).flip(0)  # S .. 1
    inside = abar.sqrt() <= schedule(kind).alphas_cumprod[0].double().sqrt()  # levels the training schedule has
    assert torch.allclose(_root_abar_at(kind, sampler.timesteps)[inside], abar.sqrt()[inside], atol=1e-9)
    assert bool((sampler.timesteps[~inside] == 0).all())  # a level before training step 0 clamps to it
    assert DiffWaveFast(schedule(kind), 8).timesteps.shape == (8,)  # other counts: geometric betas, same ends


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_diffwave_fast_recovers_a_point_mass_exactly(prediction):
    """Data that is one point c: the ideal network knows x0 = c at every level, and the inference chain's
    last step (no noise) then returns exactly c from any start."""
    from twopaths.paradigms.samplers import DiffWaveFast

    c = torch.linspace(-0.5, 0.5, 48).reshape(SHAPE[0], 3, 2, 4)

    def ideal(x_t, t):
        a = _root_abar_at("cosine", t.double()).float()[:, None, None, None]
        s = (1 - a ** 2).sqrt()
        eps = (x_t - a * c) / s
        return eps if prediction == "eps" else a * eps - s * c

    sampler = make_sampler("diffwave", schedule("cosine"), 6, prediction=prediction, clip=None)
    g = torch.Generator().manual_seed(0)
    x0 = sampler.sample(ideal, sampler.init_noise(c.shape, g), generator=g)
    assert torch.allclose(x0, c, atol=1e-4)
