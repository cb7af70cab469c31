"""Image sets: DIV2K layout, folders, HR-only, synthetic default, unreadable files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from esrprof import data
from esrprof.errors import DataError


def write(path, h, w, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path)


def test_synthetic_default_is_deterministic_and_div2k_like():
    a = data.synthetic()
    b = data.synthetic()
    assert [s.name for s in a.splits] == ["valid", "test"]
    assert all(len(s.images) == 100 for s in a.splits)
    assert a.split("valid").images[0].name == "0801" and a.split("test").images[0].name == "0901"
    shapes = [r.synthetic[:2] for r in a.split("valid").images]
    assert all(max(s) == 510 for s in shapes)
    assert len(set(shapes)) > 10  # varied, as DIV2K's are
    assert any(h > w for h, w in shapes)  # some portrait
    ref = a.split("valid").images[3]
    assert ref == b.split("valid").images[3]
    img = data.synthetic_image(20, 30, 5)
    assert img.shape == (3, 20, 30) and img.dtype == torch.uint8
    assert torch.equal(img, data.synthetic_image(20, 30, 5))
    assert not a.split("valid").n_with_hr


def test_synthetic_quick_is_small_and_says_so():
    s = data.synthetic(quick=True)
    assert all(len(x.images) == data.QUICK_IMAGES_PER_SPLIT for x in s.splits)
    long_side = 510 // data.QUICK_DIVISOR
    assert all(max(r.synthetic[:2]) <= long_side for x in s.splits for r in x.images)
    assert "quick" in s.description and s.to_dict()["synthetic"] == "quick"
    lr = s.splits[0].images[0].load_lr()
    assert lr.shape[0] == 3 and max(lr.shape[1:]) == 510 // data.QUICK_DIVISOR


def test_div2k_layout_pairs_by_name(tmp_path):
    for i in (801, 802):
        write(tmp_path / "DIV2K_valid_LR" / f"{i:04d}x4.png", 8, 12)
        write(tmp_path / "DIV2K_valid_HR" / f"{i:04d}.png", 32, 48)
    write(tmp_path / "DIV2K_test_LR" / "0901.png", 8, 8)
    s = data.div2k(tmp_path)
    valid, test = s.split("valid"), s.split("test")
    assert [r.name for r in valid.images] == ["0801", "0802"]
    assert valid.n_with_hr == 2 and test.n_with_hr == 0
    assert valid.images[0].load_lr().shape == (3, 8, 12)
    assert valid.images[0].load_hr().shape == (3, 32, 48)
    d = s.to_dict()
    assert d["source"] == "div2k" and d["splits"]["test"] == {"images": 1, "with_hr": 0}


def test_div2k_official_bicubic_layout(tmp_path):
    write(tmp_path / "DIV2K_valid_LR_bicubic" / "X4" / "0801x4.png", 8, 8)
    write(tmp_path / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png", 16, 16)
    write(tmp_path / "DIV2K_valid_HR" / "0801.png", 32, 32)
    s = data.div2k(tmp_path, splits=("valid",), scale=4)
    assert s.split("valid").images[0].load_lr().shape == (3, 8, 8)


def test_div2k_missing_split_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no test"):
        data.div2k(tmp_path, splits=("test",))
    with pytest.raises(DataError, match="no such folder"):
        data.div2k(tmp_path / "nope")


def test_folder_of_mixed_formats_with_optional_hr(tmp_path):
    for ext in ("png", "jpg", "bmp", "tiff"):
        write(tmp_path / "lr" / f"im_{ext}.{ext}", 6, 7)
    (tmp_path / "lr" / "notes.txt").write_text("not an image")
    write(tmp_path / "hr" / "im_png.png", 24, 28)
    s = data.folder(tmp_path / "lr", tmp_path / "hr")
    split = s.splits[0]
    assert split.name == "valid" and len(split.images) == 4 and split.n_with_hr == 1
    assert all(r.load_lr().shape == (3, 6, 7) for r in split.images)


def test_hr_only_makes_lr_by_bicubic_downscale(tmp_path):
    write(tmp_path / "hr" / "a.png", 34, 41, value=77)
    s = data.folder(hr_dir=tmp_path / "hr", scale=4)
    ref = s.splits[0].images[0]
    lr = ref.load_lr()
    assert lr.shape == (3, 8, 10)  # mod-cropped 32x40, /4
    assert int(lr.float().mean().round()) == 77  # a flat image stays flat
    with pytest.raises(DataError, match="scale"):
        data.folder(hr_dir=tmp_path / "hr")


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "lr" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG not really")
    ref = data.folder(tmp_path / "lr").splits[0].images[0]
    with pytest.raises(data.UnreadableImage, match=r"broken\.png"):
        ref.load_lr()


def test_empty_or_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        data.folder(tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder"):
        data.folder(tmp_path / "missing")
    with pytest.raises(DataError):
        data.folder()


def test_limit_takes_the_first_images():
    s = data.limit(data.synthetic(), 3)
    assert [len(x.images) for x in s.splits] == [3, 3]
    assert "first 3" in s.description
    assert data.limit(s, None) is s


def test_grey_and_rgba_images_become_rgb(tmp_path):
    Image.fromarray(np.zeros((5, 6), dtype=np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((5, 6, 4), dtype=np.uint8)).save(tmp_path / "a.png")
    assert data.read_image(tmp_path / "g.png").shape == (3, 5, 6)
    assert data.read_image(tmp_path / "a.png").shape == (3, 5, 6)
