"""Text conditioning in Gaussian diffusion: captions reach the denoiser through the jointly trained
encoder, cond_drop drops them to the null caption, and classifier-free guidance on prompts is
uncond + w (cond - uncond) computed in one doubled batch, with the text encoded once per sample."""

import pytest
import torch

from twopaths.backbones.mlp import MLPDenoiser, MLPDenoiserConfig
from twopaths.backbones.text_encoder import NULL_CAPTION, TextEncoder, TextEncoderConfig
from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.errors import DataError
from twopaths.paradigms.gaussian import EncodedPrompts, GaussianConfig, GaussianDiffusion

PROMPTS = ["a large red circle", "a small blue square left of a large green triangle", "a small white triangle"]


pytestmark = pytest.mark.usefixtures("one_thread")


def text_model(cond_drop: float = 0.1, perturb: bool = True, backbone: str = "unet") -> GaussianDiffusion:
    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderConfig(n_layer=1, n_head=2, d_model=16))
    if backbone == "dit":
        from twopaths.backbones.dit import DiT, DiTConfig

        net = DiT(DiTConfig(image_size=8, in_channels=3, patch_size=4, d_model=32, n_layer=1, n_head=2,
                            context_dim=16, freq_dim=32))
    else:
        net = UNet(UNetConfig(in_channels=3, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                              attention_resolutions=(4,), groups=4, num_heads=2, context_dim=16))
    model = GaussianDiffusion(net, GaussianConfig(timesteps=50, cond_drop=cond_drop), (3, 8, 8), text_encoder=enc)
    if perturb:  # move the zero-initialised branches off zero, as training would
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def x_and_t(n: int = 3):
    torch.manual_seed(1)
    return torch.randn(n, 3, 8, 8), torch.tensor([5.0, 20.0, 45.0])[:n]


def test_guidance_one_is_the_plain_conditional_network():
    model = text_model()
    x, t = x_and_t()
    context, mask = model.text_encoder(PROMPTS)
    direct = model.net(x, t, None, context=context, context_mask=mask)
    torch.testing.assert_close(model.model_output(x, t, prompts=PROMPTS, guidance=1.0), direct, atol=1e-5, rtol=0)
    enc = model.encode_prompts(PROMPTS, 3)
    assert isinstance(enc, EncodedPrompts) and enc.conditional
    torch.testing.assert_close(model.model_output(x, t, prompts=enc), direct, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone", ["unet", "dit"])
def test_guidance_is_uncond_plus_w_times_cond_minus_uncond(backbone):
    model = text_model(backbone=backbone)
    x, t = x_and_t()
    cond = model.model_output(x, t, prompts=PROMPTS)
    uncond = model.model_output(x, t)  # no prompts: the null caption
    context, mask = model.text_encoder([NULL_CAPTION] * 3)
    torch.testing.assert_close(uncond, model.net(x, t, None, context=context, context_mask=mask), atol=1e-5, rtol=0)
    assert (cond - uncond).abs().max() > 1e-3  # the prompts matter
    for w in (0.0, 3.0, 7.5):
        guided = model.model_output(x, t, prompts=PROMPTS, guidance=w)
        torch.testing.assert_close(guided, uncond + w * (cond - uncond), atol=1e-4, rtol=1e-4)
    # without prompts guidance has nothing to amplify
    torch.testing.assert_close(model.model_output(x, t, guidance=3.0), uncond, atol=1e-6, rtol=0)


def test_guided_passes_run_as_one_doubled_batch():
    model = text_model()
    x, t = x_and_t()
    batches = []
    model.net.register_forward_hook(lambda mod, args, out: batches.append(args[0].shape[0]))
    model.model_output(x, t, prompts=PROMPTS, guidance=3.0)
    assert batches == [6]


def test_sample_encodes_the_prompts_once_and_follows_them():
    model = text_model()
    calls = []
    model.text_encoder.register_forward_hook(lambda mod, args, out: calls.append(len(args[0])))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = model.sample(3, sampler="ddim", steps=6, prompts=PROMPTS, guidance=3.0, generator=g())
    assert calls == [4]  # the 3 prompts and one null caption, once for all 6 steps
    b = model.sample(3, sampler="ddim", steps=6, prompts=PROMPTS, guidance=3.0, generator=g())
    c = model.sample(3, sampler="ddim", steps=6, prompts=PROMPTS[::-1], guidance=3.0, generator=g())
    assert a.shape == (3, 3, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="2 prompts for 3 samples"):
        model.sample(3, sampler="ddim", steps=2, prompts=PROMPTS[:2])


def test_cond_drop_drops_captions_to_the_null_caption_in_training_only():
    seen = []

    def batch(n: int) -> dict:
        return {"image": torch.rand(n, 3, 8, 8) * 2 - 1, "label": torch.zeros(n, dtype=torch.long),
                "caption": [PROMPTS[i % 3] for i in range(n)]}

    for drop, train, expected in ((1.0, True, {NULL_CAPTION}), (0.0, True, set(PROMPTS)), (1.0, False, set(PROMPTS))):
        model = text_model(cond_drop=drop, perturb=False).train(train)
        hook = model.text_encoder.register_forward_hook(lambda mod, args, out: seen.append(list(args[0])))
        seen.clear()
        loss = model.loss(batch(12))
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert set(seen[0]) == expected
        hook.remove()
    model = text_model(cond_drop=0.25, perturb=False).train()
    model.text_encoder.register_forward_hook(lambda mod, args, out: seen.append(list(args[0])))
    seen.clear()
    torch.manual_seed(0)
    model.loss(batch(1000))
    assert seen[0].count(NULL_CAPTION) / 1000 == pytest.approx(0.25, abs=0.05)  # 3.5 standard deviations


def test_loss_trains_the_text_encoder_and_needs_captions():
    model = text_model(perturb=True).train()
    batch = {"image": torch.rand(4, 3, 8, 8) * 2 - 1, "label": torch.zeros(4, dtype=torch.long),
             "caption": PROMPTS + ["a large cyan square"]}
    model.loss(batch).backward()
    assert model.text_encoder.transformer.transformer.wte.weight.grad.abs().sum() > 0  # trained jointly
    with pytest.raises(DataError, match="no captions"):
        model.loss({"image": batch["image"], "label": batch["label"]})


def test_models_without_text_are_unchanged_and_refuse_prompts():
    torch.manual_seed(0)
    points = GaussianDiffusion(MLPDenoiser(MLPDenoiserConfig(dim=2, out_dim=2, width=16, num_classes=3)),
                               GaussianConfig(timesteps=20), (2,), num_classes=3, data_key="x", clip=None)
    assert points.text_encoder is None and not [n for n in points.state_dict() if "text" in n]
    y = torch.tensor([0, 1, 2])
    out = points.sample(3, sampler="ddim", steps=4, cond=y, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 2)
    loss = points.loss({"x": torch.randn(8, 2), "label": torch.zeros(8, dtype=torch.long)})
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="no text encoder"):
        points.sample(3, sampler="ddim", steps=2, prompts=["a red circle"] * 3)
