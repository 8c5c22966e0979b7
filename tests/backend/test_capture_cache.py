"""A batch's captures kept on disk: read back whole, found again by a re-run, not when the input or a
setting changed, and removed with the batch."""

from __future__ import annotations

import os

import numpy as np
from partdistill.backend.io.capture_cache import CachedMember, CaptureCache
from partdistill.shared.bundle import save_bundle
from synthetic import capture_of, table


def _kept(tmp_path):
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=3, size=32)
    source = save_bundle(tmp_path / "in" / "table.npz", cap)
    cache = CaptureCache(tmp_path / "out", views=3, resolution=32, engine="raster")
    return cap, source, cache, cache.keep(source, cap)


def test_a_kept_capture_reads_back_whole_each_time_it_is_asked_for(tmp_path):
    cap, source, cache, f = _kept(tmp_path)
    assert (
        f.parent == tmp_path / "out" / ".captures" and f.stat().st_size < (cap.rgb.nbytes + cap.face_id.nbytes) / 4
    )  # compressed
    member = CachedMember(f)
    for got in (member.capture, member.capture):
        assert got is not cap
        np.testing.assert_array_equal(got.face_id, cap.face_id)
        np.testing.assert_array_equal(got.rgb, cap.rgb)
        np.testing.assert_array_equal(got.mesh.faces, cap.mesh.faces)
        np.testing.assert_array_equal(got.gt_face_labels, cap.gt_face_labels)


def test_a_rerun_finds_a_kept_capture_unless_the_input_or_a_setting_changed(tmp_path):
    cap, source, cache, f = _kept(tmp_path)
    assert CaptureCache(tmp_path / "out", views=3, resolution=32, engine="raster").find(source) == f
    for views, resolution, engine in ((4, 32, "raster"), (3, 64, "raster"), (3, 32, "workbench")):
        assert CaptureCache(tmp_path / "out", views=views, resolution=resolution, engine=engine).find(source) is None
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file was saved again
    assert cache.find(source) is None
    cache.remove()
    assert not (tmp_path / "out" / ".captures").exists() and (tmp_path / "out").is_dir()
