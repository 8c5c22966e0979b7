"""``partdistill batch`` on a folder: capture bundles and a mesh file labelled, a broken file reported
with its reason while the others go on, an index of every input; a re-run skips what is finished
and never takes a half-written output for finished."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("bpy")

from cli_in_process import run_cli  # noqa: E402
from partdistill.backend.io.inputs import capture_in_blender  # noqa: E402
from partdistill.bench.shapes import chair  # noqa: E402
from partdistill.bench.simulated import simulate_detections  # noqa: E402
from partdistill.shared.bundle import load_bundle, save_bundle  # noqa: E402
from synthetic import capture_of, table  # noqa: E402

SHAPE = chair(arms=False)
FAST = ["--epochs", "15", "--points", "1024", "--students", "2", "--views", "4", "--resolution", "96", "--quiet"]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    d = tmp_path_factory.mktemp("collection")
    for k in range(2):  # two capture bundles with detections beside them
        mesh, gt, names = table()
        cap = capture_of(mesh, gt, names, n_views=4, size=64)
        save_bundle(d / f"table{k}.npz", cap)
        simulate_detections(cap, seed=k).save_json(d / f"table{k}.detections.json")
    # a mesh file, captured by the batch itself; its detections made from the same views
    obj = SHAPE.write_obj(d / "chair.obj")
    tmp = tmp_path_factory.mktemp("probe")
    capture_in_blender(obj, tmp / "c.npz", views=4, resolution=96, quiet=True)
    cap = load_bundle(tmp / "c.npz")
    cap.part_names, cap.gt_face_labels = SHAPE.part_names, SHAPE.labels[cap.mesh.face_to_polygon]
    dets = simulate_detections(cap)
    return d, dets


def test_batch_labels_the_good_reports_the_broken_and_resumes(collection, tmp_path):
    d, chair_dets = collection
    folder = tmp_path / "in"
    folder.mkdir()
    for f in d.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.obj").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    # the table bundles name top/leg, the chair seat/back/leg: one part list covers both
    chair_dets.save_json(folder / "chair.detections.json")
    out = tmp_path / "out"
    parts = "top,leg,seat,back"
    rc, stdout, err = run_cli(["batch", folder, "--parts", parts, "--out", out, *FAST])
    assert rc == 1, err  # something failed: the exit status says so
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "table0.npz": "done",
        "table1.npz": "done",
        "chair.obj": "done",
        "broken.obj": "failed",
    }
    assert "PNG image" in rows["broken.obj"]["reason"] and "broken.obj" in (out / "batch.log").read_text()
    assert rows["broken.obj"]["reason"].startswith("input: ") and "input: input" not in rows["broken.obj"]["reason"]
    assert "done 3, failed 1, skipped 0" in stdout
    for name in ("table0", "table1", "chair"):
        assert (out / name / "labels.npz").is_file() and (out / name / "labels.json").is_file()
    assert json.loads((out / "index.json").read_text())[0]["status"] in ("done", "failed")

    # a half-written output of an earlier, interrupted run is not taken as finished
    (out / ".partial-table1").mkdir()
    rc, stdout, err = run_cli(["batch", folder, "--parts", parts, "--out", out, *FAST])
    assert rc == 1 and "done 0, failed 1, skipped 3" in stdout, stdout + err
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert rows["table0.npz"]["status"] == "skipped" and rows["table0.npz"]["seconds"]  # its figures kept


def test_globs_and_unknown_files(tmp_path):
    from partdistill.backend.cli.batch import collect_inputs, output_names
    from partdistill.shared.errors import ValidationError

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for sub in ("a", "b"):
        (tmp_path / sub / "m.obj").write_text("v 0 0 0\n")
    (tmp_path / "a" / "m.detections.json").write_text("{}")
    paths = collect_inputs([str(tmp_path / "*" / "*.obj")])
    assert [p.parent.name for p in paths] == ["a", "b"]
    names = output_names(paths)
    assert len(set(names)) == 2 and all(n.startswith("m-") for n in names)
    with pytest.raises(ValidationError, match="no file matches"):
        collect_inputs([str(tmp_path / "*.fbx")])
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(ValidationError, match="not a mesh file"):
        collect_inputs([str(tmp_path / "notes.md")])
    (tmp_path / "a" / "readme.txt").write_text("x")  # a .txt point cloud is taken only when named
    assert [p.name for p in collect_inputs([str(tmp_path / "a")])] == ["m.obj"]
    assert collect_inputs([str(tmp_path / "a" / "readme.txt")])[0].name == "readme.txt"
