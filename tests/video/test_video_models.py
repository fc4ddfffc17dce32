"""The two video models: the space-time U-Net mixes frames only through its temporal attention,
Gaussian diffusion trains and samples 5-D clips with every sampler, frame-by-frame generation is causal
and costs T x steps calls, prediction keeps the given frames exactly, and the CLI trains, samples
(GIF + strip) and evaluates both, refusing bad input with one line and exit status 2."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import run_cli
from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.backbones.video_unet import VideoUNet, VideoUNetConfig
from twopaths.nn.attention import attention, attention_reference
from twopaths.paradigms.frame_autoregressive import FrameAutoregressive, past_channels
from twopaths.paradigms.gaussian import GaussianConfig
from twopaths.paradigms.samplers import SAMPLERS
from twopaths.paradigms.video_diffusion import VideoDiffusion

pytestmark = pytest.mark.usefixtures("one_thread")

T, C, R = 4, 1, 16


def _video_unet(temporal=(8,), **kw) -> VideoUNet:
    cfg = VideoUNetConfig(in_channels=C, image_size=R, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                          attention_resolutions=(8,), temporal_attention_resolutions=temporal, num_heads=2, groups=4,
                          frames=T, **kw)
    return VideoUNet(cfg)


def _randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight random: the zero-initialised branches (outputs, temporal attention) start as the identity,
    which would hide what the network can compute."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net.eval()


def _frame_ar(context_frames: int = 2, **kw) -> FrameAutoregressive:
    unet = UNet(UNetConfig(in_channels=C + context_frames * (C + 1), out_channels=C, image_size=R, base_channels=8,
                           channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(8,), num_heads=2, groups=4))
    return FrameAutoregressive(unet, GaussianConfig(timesteps=50, prediction="v", schedule="cosine"), (T, C, R, R),
                               context_frames, **kw)


def _clips(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, T, C, R, R, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- the space-time U-Net


def test_video_unet_keeps_shapes_and_mixes_frames_only_with_temporal_attention():
    x, t = _clips(), torch.tensor([3.0, 40.0])
    joint, per_frame = _randomize(_video_unet()), _randomize(_video_unet(temporal=()))
    assert joint(x, t).shape == x.shape and joint(x, t, y=None).dtype == torch.float32
    assert not any("relative_bias" in k for k in per_frame.state_dict())
    changed = x.clone()
    changed[:, 0] = -changed[:, 0]  # another frame 0
    with torch.no_grad():
        assert not torch.allclose(joint(x, t)[:, 3], joint(changed, t)[:, 3], atol=1e-6)  # frame 3 saw frame 0
        assert torch.equal(per_frame(x, t)[:, 1:], per_frame(changed, t)[:, 1:])  # each frame on its own
    # the learned relative position bias orders the frames: reversing time changes the output
    with torch.no_grad():
        assert not torch.allclose(joint(x.flip(1), t).flip(1), joint(x, t), atol=1e-5)
    learned = VideoUNet(VideoUNetConfig(in_channels=1, out_channels=2, image_size=R, channel_mults=(1, 2),
                                        base_channels=8, groups=4, attention_resolutions=(), frames=T,
                                        temporal_attention_resolutions=(16, 8), num_classes=3))
    assert learned(x, t, torch.tensor([0, 3])).shape == (2, T, 2, R, R)  # class + null label, learned variance
    assert torch.count_nonzero(learned(x, t)) == 0  # zero-initialised output: exactly 0 at init
    with pytest.raises(ValueError, match="clips"):
        joint(x[:, 0], t)


def test_float_masks_are_an_additive_bias_in_both_attentions():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 4, generator=g) for _ in range(3))
    bias = torch.randn(2, 5, 5, generator=g)
    assert torch.allclose(attention(q, k, v, mask=bias), attention_reference(q, k, v, mask=bias), atol=1e-5)


# ----------------------------------------------------------------------------- joint diffusion of clips


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_diffusion_trains_on_clips_and_every_sampler_draws_them(learn_sigma):
    torch.manual_seed(0)
    net = _video_unet(out_channels=2 * C if learn_sigma else C)
    model = VideoDiffusion(net, GaussianConfig(timesteps=50, learn_sigma=learn_sigma), (T, C, R, R))
    loss = model.loss({"video": _clips(3), "label": torch.zeros(3, dtype=torch.long)})
    loss.backward()
    assert torch.isfinite(loss) and net.conv_out.weight.grad.abs().sum() > 0
    _randomize(model.net)
    for sampler in SAMPLERS:
        out = model.sample(2, sampler=sampler, steps=3, generator=torch.Generator().manual_seed(1))
        assert out.shape == (2, T, C, R, R) and torch.isfinite(out).all(), sampler
    bits = model.nll_bits_per_dim(_clips(1)) if not learn_sigma else None
    assert bits is None or torch.isfinite(bits["bits_per_dim"]).all()


@pytest.mark.parametrize("sampler, w_r", [("ddim", 0.0), ("dpmpp", 2.0), ("heun", 0.0), ("diffwave", 1.0)])
def test_joint_prediction_keeps_the_context_exactly(sampler, w_r):
    model = VideoDiffusion(_randomize(_video_unet()), GaussianConfig(timesteps=50, prediction="v"), (T, C, R, R))
    context = _clips(2)[:, :2]
    out = model.predict(context, sampler=sampler, steps=3, generator=torch.Generator().manual_seed(0),
                        reconstruction_guidance=w_r)
    assert out.shape == (2, T, C, R, R) and torch.equal(out[:, :2], context) and torch.isfinite(out).all()
    other = context.clone()
    other[:, 1] = -other[:, 1]
    moved = model.predict(other, sampler=sampler, steps=3, generator=torch.Generator().manual_seed(0),
                          reconstruction_guidance=w_r)
    assert not torch.allclose(moved[:, 2:], out[:, 2:])  # the generated frames depend on the context
    with pytest.raises(ValueError, match="exactly 4 frames"):
        model.predict(context, frames=6)
    with pytest.raises(ValueError, match="1..3 frames"):
        model.predict(_clips(1))


# ----------------------------------------------------------------------------- frame by frame


def test_past_channels_hold_only_earlier_frames_and_a_present_channel():
    video = _clips(2)
    index = torch.tensor([[0, 1, 3], [2, 0, 1]])
    past = past_channels(video, index, 2)  # (2, 3, 2 * (C + 1), R, R)
    assert past.shape == (2, 3, 4, R, R)
    assert torch.equal(past[0, 2, 0], video[0, 1, 0]) and torch.equal(past[0, 2, 2], video[0, 2, 0])  # frames 1, 2
    assert (past[0, 2, [1, 3]] == 1).all()  # both present
    assert (past[0, 0] == 0).all()  # frame 0: no past at all
    assert (past[0, 1, :2] == 0).all() and torch.equal(past[0, 1, 2], video[0, 0, 0]) and (past[0, 1, 3] == 1).all()
    future = video.clone()
    future[:, 1:] = 5.0  # frames from 1 on changed: frame 1's past is frame 0 only
    assert torch.equal(past_channels(future, torch.tensor([[1]]).expand(2, 1), 2),
                       past_channels(video, torch.tensor([[1]]).expand(2, 1), 2))


def test_frame_ar_trains_and_generates_t_frames_with_t_times_steps_calls():
    torch.manual_seed(0)
    model = _frame_ar(pairs_per_clip=0)
    batch = {"video": _clips(3), "label": torch.zeros(3, dtype=torch.long)}
    assert model.pairs(batch)["frame"].shape == (3 * T, C, R, R)
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert _frame_ar(pairs_per_clip=2).pairs(batch)["past"].shape == (6, 2 * (C + 1), R, R)
    _randomize(model.net)
    calls = []
    model.net.register_forward_hook(lambda *_: calls.append(1))
    out = model.sample(2, sampler="ddim", steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, T, C, R, R) and len(calls) == T * 3
    assert model.sample(1, sampler="dpmpp", steps=2, frames=T + 2).shape == (1, T + 2, C, R, R)  # longer than trained


def test_frame_ar_is_causal_and_its_prediction_keeps_the_context():
    model = _frame_ar()
    _randomize(model.net)
    full = model.sample(2, sampler="ddim", steps=3, generator=torch.Generator().manual_seed(7))
    short = model.sample(2, sampler="ddim", steps=3, generator=torch.Generator().manual_seed(7), frames=2)
    assert torch.equal(full[:, :2], short)  # frames 0 and 1 are the same whatever comes after them
    context = _clips(2)[:, :2]
    out = model.predict(context, sampler="euler", steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, T, C, R, R) and torch.equal(out[:, :2], context)
    other = context.clone()
    other[:, 1] = -other[:, 1]  # the frame just before frame 2 changes, so frame 2 does
    moved = model.predict(other, sampler="euler", steps=3, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(moved[:, 2], out[:, 2])
    no_past = _frame_ar(context_frames=0)  # K = 0: every frame an independent image sample
    assert no_past.net.conv_in.in_channels == C
    with pytest.raises(ValueError, match="1..3 frames"):
        model.predict(_clips(1))


# ----------------------------------------------------------------------------- the command line


TINY = ["--data", "moving-fashion", "--preset", "cpu", "--set", "data.size=16", "--set", "data.frames=4",
        "--set", "data.resolution=16", "--set", "arch.unet.image_size=16", "--set", "arch.unet.base_channels=8",
        "--set", "arch.unet.channel_mults=[1,2]", "--set", "arch.unet.attention_resolutions=[8]",
        "--set", "arch.unet.groups=4", "--set", "arch.unet.num_heads=2", "--set", "arch.sample_steps=2",
        "--set", "train.batch_size=4", "--set", "train.max_steps=2", "--set", "train.eval_every=0",
        "--set", "train.sample_every=2", "--set", "train.progress=false", "--set", "optim.warmup_steps=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from twopaths.data.images import find_fashion_mnist
    from twopaths.errors import DataError

    try:
        find_fashion_mnist(None)
    except DataError as exc:
        pytest.skip(f"moving-fashion needs Fashion-MNIST ({exc}); 'make test' installs it")
    root = tmp_path_factory.mktemp("video-runs")
    extra = {"video-ddpm": ["--set", "arch.unet.temporal_attention_resolutions=[16,8]"], "video-ar": []}
    for model in ("video-ddpm", "video-ar"):
        run_cli("train", model, "--out", str(root / model), *TINY, *extra[model])
    return root


@pytest.mark.parametrize("model, calls", [("video-ddpm", 2), ("video-ar", 8)])
def test_cli_train_sample_predict_eval(runs, tmp_path, model, calls):
    run = runs / model
    hook = run / "samples" / "step_00000002.gif"
    assert hook.is_file() and hook.with_suffix(".png").is_file()
    out = run_cli("sample", str(run), "--n", "3", "--out", str(tmp_path / "clips.gif"))
    assert f"{calls} network calls per clip" in out.stdout
    gif = Image.open(tmp_path / "clips.gif")
    assert gif.n_frames == 4 and gif.size[0] > 3 * R * 4  # three clips side by side, upscaled
    strip = Image.open(tmp_path / "clips.png")
    assert strip.size[0] > strip.size[1]  # 3 rows (clips) of 4 columns (frames)
    run_cli("sample", str(run), "--n", "2", "--out", str(tmp_path / "only.png"))
    assert (tmp_path / "only.png").is_file() and not (tmp_path / "only.gif").exists()
    out = run_cli("sample", str(run), "--n", "2", "--context-frames", "2", "--sampler", "ddim", "--steps", "2",
                  "--out", str(tmp_path / "next.gif"))
    assert "continued from 2 frame(s)" in out.stdout
    assert all((tmp_path / f).is_file() for f in ("next.gif", "next.png", "next_truth.png"))
    import json

    out = run_cli("eval", str(run), "--n", "4", "--steps", "2", "--json", str(tmp_path / "e.json"))
    for name in ("frame_fid", "temporal_consistency_px", "identity_drift", "network calls", "GFLOP"):
        assert name in out.stdout
    result = json.loads((tmp_path / "e.json").read_text())["video"]
    assert result["cost"]["network_calls_per_clip"] == calls and result["cost"]["flops_per_clip"] > 0
    assert set(result["floor"]) == set(result["metrics"]) == {"frame_fid", "temporal_consistency_px", "identity_drift"}
    assert "loss" in run_cli("eval", str(run), "--metrics", "loss", "--batches", "1").stdout


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "must be at least 1"),
    (["--out", "clips.mp4"], "video samples are written as .gif"),
    (["--context-frames", "4"], "K must be 1..3"),
    (["--context-frames", "0"], "must be at least 1"),
    (["--trajectory", "t.png"], "--trajectory"),
])
def test_bad_sample_input_is_one_line_and_writes_nothing(runs, tmp_path, args, message):
    out = ["--out", str(tmp_path / "x.gif")] if "--out" not in args else []
    args = [str(tmp_path / a) if a.endswith((".mp4", ".png")) else a for a in args]
    proc = run_cli("sample", str(runs / "video-ar"), *out, *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []
    assert run_cli("eval", str(runs / "video-ar"), "--metrics", "modes", check=False).returncode == 2
