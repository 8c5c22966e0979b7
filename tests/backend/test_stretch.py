"""The category fit's stretch: each training step's shape stretched per axis, inside the unit
sphere, normals kept normal to the surface; nothing stretched outside training or at factor 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from partdistill.backend.collection import segment_collection
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.shape import Stretch
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import Member
from synthetic import capture_of, table


def _tilted_plane() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points of the plane x + 2y + 3z = 0 within the unit sphere, its unit normal at each, and
    tangents (the differences between points)."""
    rng = np.random.default_rng(0)
    n = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    a = np.cross(n, [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(n, a)
    uv = rng.uniform(-0.7, 0.7, (64, 2))
    xyz = uv[:, :1] * a + uv[:, 1:] * b
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)[None]  # noqa: E731
    return t(xyz), t(np.repeat(n[None], 64, 0)), t(xyz[1:] - xyz[:1])


def test_a_stretched_step_stays_in_the_unit_sphere_with_its_normals_still_normal_to_the_surface():
    xyz, normals, _ = _tilted_plane()
    stretch = Stretch(1.5, seed=0)
    out, nrm = stretch(xyz, normals)
    assert out.norm(dim=-1).amax().item() == pytest.approx(1.0, abs=1e-6)
    ratio = out[0, 1] / xyz[0, 1]  # the same factor for every point, per axis
    assert torch.allclose(out[0] / xyz[0], ratio.expand_as(xyz[0]), rtol=1e-4)
    assert 1 / 1.5**2 - 1e-6 <= (ratio.max() / ratio.min()).item() <= 1.5**2 + 1e-6
    assert not torch.allclose(ratio / ratio[0], torch.ones(3))  # stretched, not only scaled
    # the stretched plane's tangents stay orthogonal to the stretched normals, which stay unit vectors
    tangents = out[0, 1:] - out[0, :1]
    assert (tangents @ nrm[0, 0]).abs().max().item() < 1e-5
    assert torch.allclose(nrm.norm(dim=-1), torch.ones(1, 64), atol=1e-6)
    # each step draws its own stretch
    assert not torch.allclose(stretch(xyz, normals)[0], out)


def test_nothing_is_stretched_at_factor_one_or_without_gradients():
    xyz, normals, _ = _tilted_plane()
    assert all(a is b for a, b in zip(Stretch(1.0, seed=0)(xyz, normals), (xyz, normals), strict=True))
    with torch.no_grad():
        assert all(a is b for a, b in zip(Stretch(1.5, seed=0)(xyz, normals), (xyz, normals), strict=True))


def test_a_stretched_category_fit_labels_a_collection_and_records_its_stretch(torch_single_thread):
    mesh, gt, names = table()
    caps = [capture_of(mesh, gt, names, n_views=4, size=48) for _ in range(3)]
    members = [Member(c, simulate_detections(c, seed=k)) for k, c in enumerate(caps)]
    opts = CollectionOptions(mode="pre", students=1, stretch=1.3)
    out = segment_collection(members, names, SegmentOptions(epochs=30, n_points=512), opts)
    assert out.checkpoint.meta["training"]["stretch"] == 1.3
    for c, r in zip(caps, out.results, strict=True):
        assert shape_miou(r.face_labels, c.gt_face_labels, 2, c.mesh.face_areas()) > 0.5


@pytest.mark.parametrize("bad", [0.5, 2.5, True, "1.2"])
def test_a_stretch_outside_one_to_two_is_refused_by_name(bad):
    with pytest.raises(ValidationError, match=r"collection.stretch: must be a number in \[1, 2\]"):
        CollectionOptions(stretch=bad).validate()
