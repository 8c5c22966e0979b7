"""Preview pictures: tinted views (background untouched), the preview grid and the loss curve."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.io.preview import (
    LEGEND_LINE,
    LEGEND_PAD,
    LEGEND_SWATCH,
    _legend_font,
    colour_views,
    save_contact_sheet,
    save_loss_curve,
    save_preview,
)
from partdistill.shared.capture import Capture
from partdistill.shared.palette import part_color
from PIL import Image
from synthetic import assemble


def _capture(n_views: int = 1, h: int = 4, w: int = 5, rgb: int | None = None) -> Capture:
    """One box (12 faces); in every view faces 0, 1, 2 cover columns 0, 1, 2, columns 3-4 are background."""
    mesh, _ = assemble([(0, ((0, 0, 0), (1, 1, 1)))])
    fid = np.full((n_views, h, w), -1, np.int32)
    fid[:, :, 0], fid[:, :, 1], fid[:, :, 2] = 0, 1, 2
    if rgb is None:
        pixels = np.random.default_rng(0).integers(0, 256, (n_views, h, w, 3), dtype=np.uint8)
    else:
        pixels = np.full((n_views, h, w, 3), rgb, np.uint8)
    return Capture(mesh, pixels, fid, np.repeat(np.eye(3)[None], n_views, 0), np.repeat(np.eye(4)[None], n_views, 0))


LABELS = np.array([0, 1, -1] + [0] * 9, np.int32)  # face 0: part 0, face 1: part 1, face 2: unlabelled


def test_colour_views_leaves_background_pixels_unchanged_and_tints_the_foreground():
    cap = _capture()
    out = colour_views(cap, LABELS)
    assert out.shape == cap.rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 3:], cap.rgb[:, :, 3:])
    assert (out[:, :, :3] != cap.rgb[:, :, :3]).any(axis=-1).all()  # every foreground pixel changed


def test_on_white_pixels_with_full_alpha_the_tint_is_the_part_colour():
    out = colour_views(_capture(rgb=255), LABELS, alpha=1.0)
    for col, label in ((0, 0), (1, 1), (2, -1)):
        want = 255 * np.array(part_color(label))  # (1 - 1) * rgb + 1 * colour * (0.35 + 0.65 * 1)
        np.testing.assert_allclose(out[0, :, col], np.broadcast_to(want, (4, 3)), atol=1)
    assert (out[0, :, 3:] == 255).all()


def test_zero_alpha_changes_nothing():
    cap = _capture()
    np.testing.assert_array_equal(colour_views(cap, LABELS, alpha=0.0), cap.rgb)


def test_tinting_moves_a_grey_pixel_towards_the_part_colour():
    out = colour_views(_capture(rgb=128), LABELS).astype(int)
    r, g, b = out[0, 0, 0]  # part 0 is red
    assert r > 128 > g and r > b
    r, g, b = out[0, 0, 1]  # part 1 is blue
    assert b > r and b > g


LEGEND_2_ROWS = 2 * LEGEND_PAD + 2 * LEGEND_LINE  # "top" and "leg" one above the other on narrow views


@pytest.mark.parametrize(
    "n_views, max_views, size",
    [
        (1, 10, (20, 16 + LEGEND_2_ROWS)),
        (3, 10, (60, 16 + LEGEND_2_ROWS)),
        (7, 10, (100, 2 * 16 + LEGEND_2_ROWS)),
        (12, 10, (100, 2 * 16 + LEGEND_2_ROWS)),
    ],
)
def test_save_preview_writes_a_grid_of_views_with_a_legend(tmp_path, n_views, max_views, size):
    cap = _capture(n_views, h=16, w=20)
    path = save_preview(tmp_path / "sub" / "preview.png", cap, LABELS, ["top", "leg"], max_views=max_views)
    assert path == tmp_path / "sub" / "preview.png"
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == size
        rgb = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(rgb[:16, :20], colour_views(cap, LABELS)[0])  # first view top-left
    rows = (min(n_views, max_views) + 4) // 5
    legend = rgb[rows * 16 + 10, 10]  # inside the first legend swatch
    np.testing.assert_array_equal(legend, [int(255 * t) for t in part_color(0)])


def test_save_loss_curve_writes_a_600_by_350_png_marking_the_backward_epoch(tmp_path):
    loss = list(np.linspace(2.0, 0.3, 40))
    red = np.array([0xE4, 0x1A, 0x1C])

    def red_pixels(path) -> int:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (600, 350)
            a = np.asarray(im.convert("RGB")).astype(int)
        return int((np.abs(a - red).sum(axis=-1) < 30).sum())

    with_marker = save_loss_curve(tmp_path / "a" / "loss.png", loss, trigger_epoch=25)
    without = save_loss_curve(tmp_path / "b" / "loss.png", loss, trigger_epoch=None)
    assert red_pixels(with_marker) > 100  # the dashed vertical line (and its legend entry)
    assert red_pixels(without) == 0


def test_a_legend_of_many_parts_wraps_into_columns_inside_the_picture(tmp_path):
    cap = _capture(10, h=64, w=64)
    names = [f"part number {i}" for i in range(40)]
    labels = np.arange(12, dtype=np.int32) % 40
    with Image.open(save_preview(tmp_path / "p.png", cap, labels, names)) as im:
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.shape[1] == 5 * 64  # never wider than the views
    legend = rgb[2 * 64 :]
    swatches = {tuple(c) for c in legend.reshape(-1, 3)} & {
        tuple(int(255 * t) for t in part_color(i)) for i in range(40)
    }
    assert len(swatches) == len({part_color(i) for i in range(40)})  # every part's colour is drawn
    assert legend.shape[0] > 5 * LEGEND_LINE  # in rows below rows


def test_the_legend_font_draws_accented_greek_and_cyrillic_names():
    font = _legend_font()

    def glyph(ch: str) -> bytes:
        return bytes(font.getmask(ch))

    missing = glyph("\U0010fffd")  # a code point no font has: its "tofu" box
    for ch in "éøßΔλжЩ":
        assert glyph(ch) != missing, ch


def test_a_contact_sheet_puts_one_full_size_legend_above_its_captioned_tiles(tmp_path):
    tiles = []
    for k in range(4):
        tiles.append((save_preview(tmp_path / f"{k}.png", _capture(5, h=64, w=64), LABELS, ["top", "leg"]), f"s{k}"))
    sheet = save_contact_sheet(tmp_path / "sheet.png", tiles, ["top", "leg"], width=160, cols=3)
    with Image.open(sheet) as im:
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.shape[1] == 3 * 160
    swatch = rgb[LEGEND_PAD + 2 + LEGEND_SWATCH // 2, LEGEND_PAD + LEGEND_SWATCH // 2]  # the first, top-left
    np.testing.assert_array_equal(swatch, [int(255 * t) for t in part_color(0)])
    with Image.open(save_contact_sheet(tmp_path / "bare.png", tiles, width=160, cols=3)) as bare:
        assert rgb.shape[0] - bare.height == LEGEND_LINE + 2 * LEGEND_PAD  # both names on one row
