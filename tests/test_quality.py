"""PSNR as the challenge computed it, against hand-computed values; Y channel; SSIM."""

from __future__ import annotations

import math

import pytest
import torch

from esrprof.quality import (
    PSNR_CAP_DB,
    mean_psnr,
    mod_crop,
    psnr,
    rgb_to_y,
    ssim,
    to_uint8,
)


def grey(value: int, h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.full((3, h, w), value, dtype=torch.uint8)


def test_one_grey_level_everywhere_is_48_13_db():
    assert psnr(grey(101), grey(100), scale=4) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert round(psnr(grey(101), grey(100), scale=4), 2) == 48.13


def test_identical_images_are_infinite_and_capped_in_the_mean():
    assert psnr(grey(7), grey(7), scale=4) == math.inf
    s = mean_psnr([math.inf, 40.0])
    assert s.mean_db == pytest.approx((PSNR_CAP_DB + 40.0) / 2)
    assert s.capped == 1
    assert mean_psnr([]).mean_db is None


def test_half_the_pixels_off_by_two_hand_computed():
    sr = grey(100)
    sr[:, :, ::2] = 102  # every other column: error 2 -> squared 4 on half the pixels
    # MSE = 2 over the shaved 24x24 region (even width keeps the half/half split).
    assert psnr(sr, grey(100), scale=4) == pytest.approx(20 * math.log10(255 / math.sqrt(2)))


def test_border_of_scale_pixels_is_shaved():
    sr = grey(100)
    sr[:, :4, :] = 0
    sr[:, :, -4:] = 255
    assert psnr(sr, grey(100), scale=4) == math.inf
    # With a 2-pixel shave the damaged rows are compared.
    assert psnr(sr, grey(100), scale=4, shave=2) < 20


def test_hr_is_mod_cropped_to_the_scale():
    hr = grey(100, 35, 34)
    assert mod_crop(hr, 4).shape == (3, 32, 32)
    hr[:, 32:, :] = 0  # the rows mod-crop removes
    assert psnr(grey(101), hr, scale=4) == pytest.approx(48.1308, abs=1e-4)


def test_output_is_clamped_and_rounded_to_uint8_like_the_challenge():
    sr = torch.full((1, 3, 32, 32), 100.4 / 255)
    assert psnr(to_uint8(sr), grey(100), scale=4) == math.inf  # 100.4 rounds to 100
    sr = torch.full((1, 3, 32, 32), 100.6 / 255)
    assert psnr(to_uint8(sr), grey(100), scale=4) == pytest.approx(48.1308, abs=1e-4)
    assert to_uint8(torch.full((3, 2, 2), 1.7)).unique().tolist() == [255]
    assert to_uint8(torch.full((3, 2, 2), -0.3)).unique().tolist() == [0]
    # A 0-255 model: no scaling.
    assert to_uint8(torch.full((3, 2, 2), 99.6), pixel_range=255).unique().tolist() == [100]


def test_to_uint8_rejects_bad_input():
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(3, 2, 2), pixel_range=2)
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(2, 3, 2, 2))
    with pytest.raises(TypeError):
        psnr(torch.zeros(3, 32, 32), grey(1), scale=4)


def test_y_channel_hand_computed():
    y_step = (65.481 + 128.553 + 24.966) / 255  # one grey level on R, G and B moves Y this much
    expected = 20 * math.log10(255 / y_step)
    assert psnr(grey(101), grey(100), scale=4, y_channel=True) == pytest.approx(expected)
    assert rgb_to_y(grey(0, 1, 1)).item() == pytest.approx(16.0)
    assert rgb_to_y(grey(255, 1, 1)).item() == pytest.approx(235.0)


def test_psnr_uses_one_mse_over_rgb():
    sr = grey(100)
    sr[0] = 103  # R off by 3, G and B exact: MSE = 9/3 = 3
    assert psnr(sr, grey(100), scale=4) == pytest.approx(20 * math.log10(255 / math.sqrt(3)))


def test_ssim_identical_and_constant_images():
    assert ssim(grey(80), grey(80), scale=4) == pytest.approx(1.0)
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # variances are zero
    assert ssim(grey(100), grey(120), scale=4) == pytest.approx(expected)


def test_ssim_drops_with_noise():
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (3, 48, 48), generator=g, dtype=torch.uint8)
    noisy = (hr.int() + torch.randint(-20, 21, hr.shape, generator=g)).clamp(0, 255)
    value = ssim(noisy.to(torch.uint8), hr, scale=4)
    assert 0 < value < 0.99
    assert ssim(noisy.to(torch.uint8), hr, scale=4, y_channel=True) < 1


def test_too_small_images_are_refused():
    with pytest.raises(ValueError):
        psnr(grey(1, 8, 8), grey(1, 8, 8), scale=4)


def test_ssim_matches_a_direct_2d_window_reference():
    g = torch.Generator().manual_seed(1)
    hr = torch.randint(0, 256, (3, 40, 44), generator=g, dtype=torch.uint8)
    sr = (hr.int() + torch.randint(-30, 31, hr.shape, generator=g)).clamp(0, 255).to(torch.uint8)

    x = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-(x**2) / (2 * 1.5**2))
    w1 /= w1.sum()
    win = (w1[:, None] * w1[None, :])[None, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def plane(a, b):
        f = lambda t: torch.nn.functional.conv2d(t[None, None], win)  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cv = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        return float((((2 * ma * mb + c1) * (2 * cv + c2))
                      / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())

    a, b = sr[:, 4:-4, 4:-4].double(), hr[:, 4:-4, 4:-4].double()
    expected = sum(plane(a[c], b[c]) for c in range(3)) / 3
    assert ssim(sr, hr, scale=4) == pytest.approx(expected, rel=1e-12)
