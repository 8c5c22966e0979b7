"""Example pictures of the SIMULATED teachers at every noise level.

For a shape and a mode (box or mask), a grid whose rows are the noise levels (the ground truth
first) and whose columns are a few views, the detections drawn on the rendered views (boxes with
part name and score, dashed where the whole-object filter would consider them; masks tinted)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from partdistill.backend.io.preview import colour_views
from partdistill.backend.pipeline.detect import whole_object_box
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.shared.capture import Capture
from partdistill.shared.palette import part_color

from .levels import LEVELS, simulate
from .reporting import pyplot, save_figure


def teacher_levels(
    cap: Capture, name: str, mode: str, seed: int, path: Path, views: Sequence[int] = (0, 2, 4, 7), cover: float = 0.85
) -> Path:
    plt = pyplot()
    import matplotlib.patches as patches

    views = [v for v in views if v < cap.n_views] or [0]
    g = face_graph(cap.mesh)
    names = cap.part_names
    fg_any = (cap.face_id[views] >= 0).any(axis=0)
    rows_fg, cols_fg = np.flatnonzero(fg_any.any(axis=1)), np.flatnonzero(fg_any.any(axis=0))
    r0, r1 = max(rows_fg[0] - 12, 0), rows_fg[-1] + 12
    c0, c1 = max(cols_fg[0] - 12, 0), cols_fg[-1] + 12
    rows = ["ground truth", *LEVELS]
    fig, axes = plt.subplots(len(rows), len(views), figsize=(3.2 * len(views), 3.2 * len(rows)), squeeze=False)
    gt_img = colour_views(cap, cap.gt_face_labels)
    for i, row in enumerate(rows):
        det = None if i == 0 else simulate(cap, row, mode, seed, g)
        for j, v in enumerate(views):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if det is None:
                ax.imshow(gt_img[v][r0:r1, c0:c1])
                if j == 0:
                    ax.set_ylabel("ground truth")
                continue
            img = cap.rgb[v].astype(np.float32).copy()
            for d in det.views[v] if mode == "mask" else ():
                img[d.mask] = 0.5 * img[d.mask] + 0.5 * np.array(part_color(d.part)) * 255
            ax.imshow(img.clip(0, 255).astype(np.uint8)[r0:r1, c0:c1])
            fg = cap.face_id[v] >= 0
            for d in det.views[v]:
                x0, y0, x1, y1 = d.box
                dashed = whole_object_box(np.asarray(d.box), fg, cover)
                ax.add_patch(
                    patches.Rectangle(
                        (x0 - c0, y0 - r0),
                        x1 - x0,
                        y1 - y0,
                        fill=False,
                        edgecolor=part_color(d.part),
                        linewidth=1.6,
                        linestyle="--" if dashed else "-",
                    )
                )
                ax.text(
                    x0 - c0 + 1,
                    y0 - r0 + 8,
                    f"{names[d.part]} {d.score:.2f}",
                    fontsize=6,
                    color="white",
                    bbox={"facecolor": part_color(d.part), "alpha": 0.8, "pad": 0.5, "lw": 0},
                )
            if j == 0:
                ax.set_ylabel(f"{row} ({det.n_detections} det.)")
    handles = [patches.Patch(color=part_color(p), label=n) for p, n in enumerate(names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(names), 8), fontsize=9)
    fig.suptitle(f"{name}: SIMULATED {mode} teacher per noise level (dashed: covers the whole object)")
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=80)
