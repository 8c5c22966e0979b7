"""Pictures of a result: tinted views with a legend, and the loss curve.

Each part's pixels are tinted in its colour; the loss curve marks the epoch where backward
distillation started."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.palette import part_color

#: The legend's swatch side, margin and line height (pixels).
LEGEND_SWATCH, LEGEND_PAD, LEGEND_LINE = 12, 6, 18


def colour_views(capture: Capture, face_labels: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """(N, H, W, 3) uint8: each view's RGB with the labelled pixels blended towards the part colour."""
    n_parts = int(face_labels.max()) + 1 if face_labels.size else 0
    lut = np.array([part_color(i) for i in range(-1, max(n_parts, 0))], dtype=np.float32) * 255  # row 0 = -1
    fid = capture.face_id
    label = np.where(fid >= 0, face_labels[np.maximum(fid, 0)], -1)
    colour = lut[label + 1]
    rgb = capture.rgb.astype(np.float32)
    shade = rgb.mean(axis=-1, keepdims=True) / 255.0
    tinted = (1 - alpha) * rgb + alpha * colour * (0.35 + 0.65 * shade)
    return np.where((fid >= 0)[..., None], tinted, rgb).clip(0, 255).astype(np.uint8)


def save_preview(
    path: str | Path,
    capture: Capture,
    face_labels: np.ndarray,
    part_names: Sequence[str],
    max_views: int = 10,
) -> Path:
    """A grid of coloured views with a legend, as PNG. The legend is set in DejaVu Sans (shipped with
    matplotlib: it covers Latin, Greek, Cyrillic and many symbols) in as many columns as fit the
    width, rows below rows, so every part name shows however many there are."""
    from PIL import Image, ImageDraw

    views = colour_views(capture, face_labels)[:max_views]
    n, h, w, _ = views.shape
    cols = min(5, n)
    rows = (n + cols - 1) // cols
    width = cols * w
    font = _legend_font()
    canvas = Image.new("RGB", (width, rows * h + _legend_height(part_names, font, width)), (255, 255, 255))
    for i, img in enumerate(views):
        canvas.paste(Image.fromarray(img), ((i % cols) * w, (i // cols) * h))
    _draw_legend(ImageDraw.Draw(canvas), part_names, font, width, rows * h)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _legend_columns(names: Sequence[str], font, width: int) -> tuple[float, int]:
    """The width of one legend entry and how many entries fit a row of ``width`` pixels."""
    col_w = LEGEND_SWATCH + 4 + max((font.getlength(t) for t in names), default=0) + 14
    return col_w, max(1, int((width - LEGEND_PAD) // col_w))


def _legend_height(names: Sequence[str], font, width: int) -> int:
    per_row = _legend_columns(names, font, width)[1]
    return (len(names) + per_row - 1) // per_row * LEGEND_LINE + 2 * LEGEND_PAD


def _draw_legend(draw, names: Sequence[str], font, width: int, top: int) -> None:
    """Each part's colour swatch and name, in as many columns as fit ``width``, from ``top`` down."""
    col_w, per_row = _legend_columns(names, font, width)
    for i, text in enumerate(names):
        x = LEGEND_PAD + (i % per_row) * col_w
        y = top + LEGEND_PAD + (i // per_row) * LEGEND_LINE
        box = [x, y + 2, x + LEGEND_SWATCH, y + 2 + LEGEND_SWATCH]
        draw.rectangle(box, fill=tuple(int(255 * t) for t in part_color(i)))
        draw.text((x + LEGEND_SWATCH + 4, y), text, fill=(0, 0, 0), font=font)


def _legend_font():
    """DejaVu Sans from matplotlib's own fonts; PIL's built-in bitmap font where that is missing."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 13)
    except (ImportError, OSError):
        return ImageFont.load_default()


def save_loss_curve(path: str | Path, loss: Sequence[float], trigger_epoch: int | None) -> Path:
    """The distillation loss per epoch, with a marker where backward distillation started (seed Fig. B)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(np.arange(1, len(loss) + 1), loss, color="#377eb8", label="distillation loss")
    if trigger_epoch is not None:
        ax.axvline(
            trigger_epoch,
            color="#e41a1c",
            linestyle="--",
            label=f"backward distillation (epoch {trigger_epoch})",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_contact_sheet(
    path: str | Path,
    tiles: Sequence[tuple[Path, str]],
    part_names: Sequence[str] = (),
    width: int = 420,
    cols: int = 3,
) -> Path:
    """One PNG of several results to look at together: each tile is a result's ``preview.png`` scaled
    to ``width`` pixels, captioned (its name and why it is there), ``cols`` tiles a row, in order,
    under one legend of ``part_names`` at full size (the tiles' own legends shrink with them)."""
    from PIL import Image, ImageDraw

    font = _legend_font()
    images = []
    for png, caption in tiles:
        with Image.open(png) as im:
            im = im.convert("RGB")
            scaled = im.resize((width, max(1, round(im.height * width / im.width))))
        lines = _wrap(caption, font, width - 8)
        tile = Image.new("RGB", (width, scaled.height + LEGEND_PAD + LEGEND_LINE * len(lines)), (255, 255, 255))
        tile.paste(scaled, (0, 0))
        draw = ImageDraw.Draw(tile)
        for k, text in enumerate(lines):
            draw.text((4, scaled.height + LEGEND_PAD // 2 + k * LEGEND_LINE), text, fill=(0, 0, 0), font=font)
        images.append(tile)
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    row_h = [max((im.height for im in images[r * cols : (r + 1) * cols]), default=0) for r in range(rows)]
    top = _legend_height(part_names, font, cols * width) if part_names else 0
    sheet = Image.new("RGB", (cols * width, max(top + sum(row_h), 1)), (255, 255, 255))
    if part_names:
        _draw_legend(ImageDraw.Draw(sheet), part_names, font, cols * width, 0)
    for k, im in enumerate(images):
        sheet.paste(im, ((k % cols) * width, top + sum(row_h[: k // cols])))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _wrap(text: str, font, width: float, max_lines: int = 4) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if font.getlength(trial) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines[:max_lines] if len(lines) <= max_lines else [*lines[: max_lines - 1], lines[max_lines - 1] + " …"]
