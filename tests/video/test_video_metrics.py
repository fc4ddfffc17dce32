"""The video tracker and the video metrics: the tracker reads real test clips within the issue's 1 pixel,
true motion is consistent and scrambled motion is not, a swapped item drifts, and video_scores reports
every number beside its floor."""

from __future__ import annotations

import shutil

import pytest
import torch

from twopaths.config import DataConfig
from twopaths.data.registry import load_splits
from twopaths.data.video import make_moving_fashion
from twopaths.errors import DataError, TwopathsError
from twopaths.eval.video import (VIDEO_METRICS, clip_motion_residuals, fit_bounce_motion, identity_drift,
                                 temporal_consistency, video_scores)
from twopaths.eval.video_tracker import load_video_tracker, track, tracking_error
from twopaths.eval.features import WEIGHTS_DIR

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def real():
    """300 clips of the moving-fashion test split (items the tracker never saw) with their true centres."""
    try:
        test = load_splits(DataConfig(name="moving-fashion", size=1)).test
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    return test.video[:300], test.positions[:300, :, 0]


@pytest.fixture(scope="module")
def tracker():
    return load_video_tracker()


@pytest.fixture(scope="module")
def tracked(real, tracker):
    return track(real[0], tracker)


def test_tracker_reads_real_test_clips_within_a_pixel(real, tracker, tracked):
    assert tracked.shape == real[1].shape
    error = tracking_error(tracked, real[1])
    assert error < 1.0  # the bar
    assert error < 0.4 and tracker.card["test_error_px"] < 0.5  # what the shipped weights do (0.16 px)
    assert tracker.identity.startswith("video-tracker@") and "px" in tracker.identity
    assert track(real[0][:5, 2], tracker).shape == (5, 2)  # frames (N, 1, R, R) too


def test_tracker_weights_are_checked_against_their_card(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"video-tracker{suffix}", tmp_path / f"mine{suffix}")
    assert load_video_tracker(tmp_path / "mine.safetensors").card["sha256"]
    with open(tmp_path / "mine.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(TwopathsError, match="do not match their card"):
        load_video_tracker(tmp_path / "mine.safetensors")
    with pytest.raises(TwopathsError, match=r"grey clips \(N, T, 1, R, R\)"):
        track(torch.zeros(2, 3, 8, 8))


def test_motion_fit_recovers_true_trajectories_and_rejects_scrambled_ones():
    items = (torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    clips = make_moving_fashion(items, torch.zeros(20), 400, frames=8, seed=4)
    true = clips.positions[:, :, 0]  # (N, T, 2)
    assert temporal_consistency(true, 32) < 1e-3
    a, b, fitted = fit_bounce_motion(true[..., 0], 6.0, 26.0)
    assert torch.allclose(b.abs().float(), clips.velocities[:, 0, 0].abs(), atol=1e-3)
    assert torch.allclose(fitted.float(), true[..., 0], atol=1e-3)
    g = torch.Generator().manual_seed(1)
    shuffled = torch.stack([clip[torch.randperm(8, generator=g)] for clip in true])
    assert temporal_consistency(shuffled, 32) > 2.0
    noisy = true + 0.2 * torch.randn(true.shape, generator=g)  # about a tracker's error
    assert 0.15 < temporal_consistency(noisy, 32) < 0.3
    assert clip_motion_residuals(true, 32).shape == (400,)
    with pytest.raises(TwopathsError, match=r"positions must be \(N, T, 2\)"):
        temporal_consistency(true[:, :1], 32)


def test_tracked_real_clips_are_consistent(real, tracked):
    real_tc = temporal_consistency(tracked, 32)
    assert real_tc < 0.4  # about the tracker's error
    g = torch.Generator().manual_seed(2)
    order = torch.stack([torch.randperm(8, generator=g) for _ in range(len(tracked))])  # (N, T) shuffled frames
    shuffled_clips = torch.gather(real[0], 1, order[:, :, None, None, None].expand_as(real[0]))
    assert temporal_consistency(track(shuffled_clips), 32) > 5 * real_tc


def test_identity_drift_of_a_swapped_item(real, tracked, fm_net):
    video, _ = real
    same = identity_drift(video, tracked, fm_net)
    other = torch.roll(torch.arange(len(video)), 1)  # every clip ends with the next clip's last frame
    swapped = video.clone()
    swapped[:, -1] = video[other, -1]
    moved = tracked.clone()
    moved[:, -1] = tracked[other, -1]
    assert identity_drift(swapped, moved, fm_net) > 3 * same


def test_video_scores_beside_their_floor(real, tracker, fm_net):
    video, _ = real
    n = 64
    clips, reference = video[:n], video[n:2 * n]
    g = torch.Generator().manual_seed(3)
    order = torch.stack([torch.randperm(8, generator=g) for _ in range(n)])
    scrambled = torch.gather(clips, 1, order[:, :, None, None, None].expand_as(clips))
    scores = video_scores(scrambled, reference, tracker=tracker, feature_net=fm_net, fid_rounds=10)
    assert scores["n"] == n and scores["frames"] == 8 * n and scores["tracker"] == tracker.identity
    assert set(VIDEO_METRICS) | {"temporal_consistency_se"} == set(scores["floor"])
    assert set(scores["metrics"]) == set(scores["floor"]) | {"frame_fid_std"}  # its spread over resampled clips
    assert 0 < scores["metrics"]["frame_fid_std"] < scores["metrics"]["frame_fid"]
    # the frames are real frames, so only the motion gives the scrambled clips away
    assert scores["metrics"]["frame_fid"] < 3 * scores["floor"]["frame_fid"]
    assert scores["metrics"]["temporal_consistency_px"] > 5 * scores["floor"]["temporal_consistency_px"]
    with pytest.raises(TwopathsError, match="same shape"):
        video_scores(scrambled[:10], reference, reference, tracker=tracker, feature_net=fm_net)
