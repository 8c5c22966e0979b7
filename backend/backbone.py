"""The student's encoder pretrained without labels, and loading it into a student.

Pretrained by masked point modelling (after Point-MAE); loaded frozen or to fine-tune.

The backbone is the student's point encoder (``stem``, ``edge1``, ``edge2``: Fourier features and
two EdgeConv layers); the part-scoring head (``fuse``, ``global_proj``, ``text_proj``) is what the
distillation trains when the backbone is frozen, as the paper does with a frozen Point-M2AE.

Pretext (per shape of ``n`` surface points): ``G`` patches (a random centre and its ``K`` nearest
points) are cut out; a ``mask_ratio`` share of them is removed from the input. The encoder sees the
visible points only; for each removed patch a small decoder reads the encoder's features at the
visible points nearest to the patch centre (max-pooled) with the centre's Fourier features and
predicts the ``K`` point offsets of the patch, scored by the Chamfer distance to the true ones
(normalised by the patch radius). Predicting a hidden region's shape from its surroundings needs
local geometry the part segmentation uses (surfaces, edges, thin structures).

On disk: ``backbone.safetensors`` (the encoder's weights, keys as in ``EdgePointNet``),
``backbone.json`` (architecture, pretext settings, corpus, loss curve) and ``README.md`` (a model card)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from partdistill.shared.errors import ValidationError
from torch import nn

from .pipeline.shape import normalise
from .students.edge_point_net import EdgePointNet, FourierFeatures, knn

WEIGHTS = "backbone.safetensors"
META = "backbone.json"
ENCODER = ("stem", "edge1", "edge2")


class PatchDecoder(nn.Module):
    """Features near a hidden patch's centre -> the patch's ``k`` offsets (k, 3), in patch radii."""

    def __init__(self, feat_dim: int, k: int, width: int = 128):
        super().__init__()
        self.k = k
        self.fourier = FourierFeatures(4)
        self.mlp = nn.Sequential(
            nn.Linear(feat_dim + self.fourier.out_dim, width),
            nn.GELU(),
            nn.Linear(width, width),
            nn.GELU(),
            nn.Linear(width, 3 * k),
        )

    def forward(self, pooled: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([pooled, self.fourier(centres)], dim=-1)).reshape(*centres.shape[:-1], self.k, 3)


def _encode(net: EdgePointNet, xyz: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """(1, N, 3) -> (1, N, 3 x width) the encoder's per-point features (what the head reads)."""
    nbr = knn(xyz, net.k)
    h0 = net.stem(torch.cat([net.fourier(xyz), normals], dim=-1))
    h1 = net.edge1(h0, nbr)
    return torch.cat([h0, h1, net.edge2(h1, nbr)], dim=-1)


def _chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean symmetric squared Chamfer distance between point sets (G, K, 3) and (G, K, 3)."""
    d = torch.cdist(a, b) ** 2
    return d.min(dim=2).values.mean() + d.min(dim=1).values.mean()


def masked_patch_loss(
    net: EdgePointNet,
    decoder: PatchDecoder,
    xyz: np.ndarray,
    normals: np.ndarray,
    rng: np.random.Generator,
    n_patches: int = 32,
    mask_ratio: float = 0.6,
) -> torch.Tensor:
    """The pretext loss on one shape: ``xyz`` (N, 3) in the unit sphere, ``normals`` (N, 3)."""
    x = torch.as_tensor(xyz, dtype=torch.float32)
    n = len(x)
    centres = rng.choice(n, n_patches, replace=False)
    patch = knn(x[None], decoder.k)[0][torch.as_tensor(centres)]  # (G, K) point indices
    hidden = rng.permutation(n_patches)[: int(round(mask_ratio * n_patches))]
    visible = torch.ones(n, dtype=torch.bool)
    visible[patch[torch.as_tensor(hidden)].flatten()] = False
    vis_idx = torch.nonzero(visible).flatten()
    if len(vis_idx) < 8:
        raise ValidationError("n_points", f"{n} points are too few for {n_patches} patches of {decoder.k}")
    feats = _encode(net, x[vis_idx][None], torch.as_tensor(normals, dtype=torch.float32)[vis_idx][None])[0]
    c = x[torch.as_tensor(centres[hidden])]  # (H, 3)
    near = torch.cdist(c, x[vis_idx]).topk(8, dim=1, largest=False).indices  # (H, 8) visible neighbours
    pooled = feats[near].amax(dim=1)
    target = x[patch[torch.as_tensor(hidden)]] - c[:, None]  # (H, K, 3)
    scale = target.norm(dim=-1).amax(dim=1).clamp_min(1e-6)[:, None, None]
    return _chamfer(decoder(pooled, c), target / scale)


def pretrain(
    shapes: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    steps: int = 2000,
    n_points: int = 2048,
    lr: float = 1e-3,
    seed: int = 0,
    patch_size: int = 32,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[EdgePointNet, list[float]]:
    """Pretrain a student's encoder on ``shapes`` (each ``(xyz (M, 3), normals (M, 3))`` surface
    samples, M >= ``n_points``; normalised here); one shape per step. Returns the student (its
    encoder trained) and the loss per step."""
    if not shapes:
        raise ValidationError("shapes", "pretraining needs at least one shape")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = EdgePointNet()
    decoder = PatchDecoder(3 * net.config["width"], patch_size)
    params = [p for name in ENCODER for p in getattr(net, name).parameters()] + list(decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for step in range(steps):
        xyz, nrm = shapes[rng.integers(len(shapes))]
        pick = rng.choice(len(xyz), min(n_points, len(xyz)), replace=False)
        loss = masked_patch_loss(net, decoder, normalise(xyz[pick]), nrm[pick], rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    return net, losses


def save_backbone(folder: str | Path, net: EdgePointNet, info: dict) -> Path:
    """Write the encoder's weights, its metadata and a model card to ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items() if k.split(".")[0] in ENCODER}
    save_file(weights, str(folder / WEIGHTS))
    meta = {
        "format": "partdistill-backbone-1",
        "architecture": "EdgePointNet",
        "config": net.config,
        "modules": list(ENCODER),
        "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
        **info,
    }
    (folder / META).write_text(json.dumps(meta, indent=1))
    (folder / "README.md").write_text(_model_card(meta))
    return folder


def load_backbone(student: EdgePointNet, folder: str | Path, *, frozen: bool) -> dict:
    """Load a pretrained encoder into ``student`` (``frozen``: its weights stop learning); returns the
    backbone's metadata. A folder that is not a backbone, or one of another architecture, is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise ValidationError("backbone", f"{folder} is not a partdistill backbone (needs {META} and {WEIGHTS})")
    try:
        meta = json.loads((folder / META).read_text())
        weights = load_file(str(folder / WEIGHTS))
    except (ValueError, OSError, SafetensorError) as e:
        raise ValidationError("backbone", f"{folder}: unreadable backbone ({e})") from None
    mine = {k: v for k, v in student.config.items() if k != "text_dim"}
    theirs = {k: v for k, v in meta.get("config", {}).items() if k != "text_dim"}
    if meta.get("architecture") != "EdgePointNet" or mine != theirs:
        raise ValidationError("backbone", f"{folder}: made for {meta.get('architecture')} {theirs}, not {mine}")
    missing, _ = student.load_state_dict(
        {k: v.to(next(student.parameters()).device) for k, v in weights.items()}, strict=False
    )
    if any(k.split(".")[0] in ENCODER for k in missing):
        raise ValidationError("backbone", f"{folder}: weights missing for {sorted(missing)[:3]} ...")
    for name in ENCODER:
        for p in getattr(student, name).parameters():
            p.requires_grad_(not frozen)
    return meta


def _model_card(meta: dict) -> str:
    losses = meta.get("loss", [])
    first = np.mean(losses[:50]) if losses else float("nan")
    last = np.mean(losses[-50:]) if losses else float("nan")
    return f"""# partdistill backbone (EdgePointNet encoder, masked point modelling)

- **What**: the point encoder of the partdistill student (Fourier features + two EdgeConv layers,
  config `{json.dumps(meta["config"])}`), pretrained without labels by masked patch reconstruction
  (after Point-MAE): {meta.get("patches", 32)} patches of {meta.get("patch_size", 32)} points, \
{int(100 * meta.get("mask_ratio", 0.6))} % hidden, Chamfer loss.
- **Data**: {meta.get("corpus", "?")}. No part labels were used.
- **Training**: {meta.get("steps", "?")} steps of one shape of {meta.get("n_points", "?")} points, AdamW, \
cosine schedule, seed {meta.get("seed", "?")}; loss {first:.4f} (first 50 steps) -> {last:.4f} (last 50).
- **Use**: `partdistill segment ... --backbone {meta.get("name", "FOLDER")}` (frozen, as in the paper) or
  with `--finetune-backbone`. Whether it helps is measured in docs/benchmark.md (Fig. B).
- **Limits**: pretrained on the shapes above only; it has never seen scans or noisy meshes.
"""
