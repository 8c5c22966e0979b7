"""Pre-alignment (fit once over many shapes, predict with the student alone) and few-shot units."""

from __future__ import annotations

import json

import numpy as np
import pytest
from partdistill.backend import cli, tta
from partdistill.backend.checkpoint import load_checkpoint, save_checkpoint
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.lift import few_shot_units
from partdistill.backend.pipeline.sample import sample_surface
from partdistill.backend.pre import TrainingShape, fit, predict
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.bundle import save_bundle
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from synthetic import assemble, capture_of

NAMES = ("top", "leg")


def table(width: float, height: float, leg: float):
    parts = [(0, ((-width, -0.6, height), (width, 0.6, height + 0.1)))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (width - 0.15), sy * 0.45
            parts.append((1, ((cx - leg, cy - leg, 0.0), (cx + leg, cy + leg, height))))
    mesh, gt = assemble(parts)
    return capture_of(mesh, gt, NAMES, n_views=6, size=72)


@pytest.fixture(scope="module")
def tables():
    return [table(w, h, l) for w, h, l in [(1.0, 0.9, 0.06), (1.2, 0.7, 0.05), (0.8, 1.0, 0.08), (1.1, 0.8, 0.07)]]


@pytest.fixture(scope="module")
def checkpoint(tables, tmp_path_factory):
    shapes = [TrainingShape(c, simulate_detections(c)) for c in tables[:3]]
    ckpt = fit(shapes, NAMES, SegmentOptions(n_points=1024, epochs=40))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), ckpt)


def test_checkpoint_holds_safetensors_weights_and_json_metadata(checkpoint):
    meta = json.loads((checkpoint / "partdistill.json").read_text())
    assert meta["part_names"] == list(NAMES) and meta["format"] == "partdistill-student"
    assert meta["training"]["n_shapes"] == 3 and len(meta["training"]["loss"]) == meta["training"]["epochs_run"]
    assert (checkpoint / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors: u64 length + JSON header


def test_predict_labels_a_held_out_shape_without_any_teacher(checkpoint, tables, monkeypatch):
    def no_teacher(*a, **k):
        raise AssertionError("predict must not load a teacher")

    import partdistill.backend.teachers as teachers

    monkeypatch.setattr(teachers, "make_teacher", no_teacher)
    held_out = tables[3]
    res = predict(held_out, load_checkpoint(checkpoint))
    assert res.face_labels.shape == (held_out.mesh.n_faces,) and res.stats["method"] == "pre"
    assert shape_miou(res.face_labels, held_out.gt_face_labels, 2, held_out.mesh.face_areas()) > 0.8


def test_loading_a_broken_checkpoint_names_the_problem(tmp_path, checkpoint):
    with pytest.raises(ValidationError, match="not a partdistill checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "partdistill.json").write_text((checkpoint / "partdistill.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValidationError, match="cannot load"):
        load_checkpoint(tmp_path)


def test_few_shot_units_have_confidence_one_and_survive_backward_distillation(tables):
    cap = tables[0]
    labelled = np.full(cap.mesh.n_faces, -1, np.int32)
    labelled[:4] = cap.gt_face_labels[:4]  # a few painted faces of the top
    labelled[-2:] = cap.gt_face_labels[-2:]  # and of a leg
    pts = sample_surface(cap.mesh, 2000, seed=0)
    units = few_shot_units(pts, labelled)
    assert units.fixed.all() and (units.confidence == 1).all() and set(units.part) == {0, 1}
    res = tta.segment(
        cap,
        NAMES,
        options=SegmentOptions(n_points=2000, epochs=60),
        detections=simulate_detections(cap),
        labelled_faces=labelled,
    )
    assert res.stats["trigger_epoch"] is not None
    after = np.array(res.stats["unit_weights_after"])
    assert (after[-2:] == 1.0).all()  # the two few-shot units come last and keep confidence 1


def test_few_shot_labels_alone_segment_a_shape(tables):
    cap = tables[1]
    labelled = np.full(cap.mesh.n_faces, -1, np.int32)
    top = np.nonzero(cap.gt_face_labels == 0)[0][:6]
    leg = np.nonzero(cap.gt_face_labels == 1)[0][::3]
    labelled[top], labelled[leg] = 0, 1
    res = tta.segment(cap, NAMES, options=SegmentOptions(n_points=2000, epochs=60), labelled_faces=labelled)
    assert shape_miou(res.face_labels, cap.gt_face_labels, 2, cap.mesh.face_areas()) > 0.8


def test_cli_fit_then_predict(tables, tmp_path):
    for i, cap in enumerate(tables[:2]):
        save_bundle(tmp_path / "train" / f"t{i}.npz", cap)
        simulate_detections(cap).save_json(tmp_path / "train" / f"t{i}.detections.json")
    save_bundle(tmp_path / "new.npz", tables[3])
    model, out = tmp_path / "model", tmp_path / "out"
    assert (
        cli.main(
            [
                "fit",
                str(tmp_path / "train"),
                "--parts",
                "top,leg",
                "--out",
                str(model),
                "--points",
                "1024",
                "--epochs",
                "30",
                "--quiet",
            ]
        )
        == 0
    )
    assert cli.main(["predict", str(tmp_path / "new.npz"), "--model", str(model), "--out", str(out), "--quiet"]) == 0
    z = np.load(out / "labels.npz")
    assert z["face_labels"].shape == (tables[3].mesh.n_faces,)
    assert (out / "segmented.glb").exists() and (out / "preview.png").exists()


def test_cli_segment_takes_few_shot_labels(tables, tmp_path):
    cap = tables[2]
    save_bundle(tmp_path / "t.npz", cap)
    simulate_detections(cap).save_json(tmp_path / "d.json")
    labels = np.full(cap.mesh.n_faces, -1, np.int32)
    labels[:3] = 0
    np.savez(tmp_path / "painted.npz", face_labels=labels, part_names=np.array(["top", "leg"]))
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "segment",
                str(tmp_path / "t.npz"),
                "--parts",
                "top,leg",
                "--detections",
                str(tmp_path / "d.json"),
                "--labels",
                str(tmp_path / "painted.npz"),
                "--out",
                str(out),
                "--points",
                "1024",
                "--epochs",
                "20",
                "--quiet",
            ]
        )
        == 0
    )
    stats = json.loads((out / "labels.json").read_text())["stats"]
    assert stats["n_units"] == stats["n_detections"] + 1  # one few-shot unit for the painted part


# ---- a category model as a job option (in process, CLI and server) ---------------------------------


def test_a_category_model_labels_a_shape_in_any_part_order(checkpoint, tables):
    held_out = tables[3]
    direct = predict(held_out, load_checkpoint(checkpoint))
    named = np.asarray(direct.part_names)[direct.face_labels]
    for order in (NAMES, NAMES[::-1]):
        res = tta.segment(held_out, order, options=SegmentOptions(category_model=str(checkpoint)))
        assert res.part_names == order
        np.testing.assert_array_equal(np.asarray(order)[res.face_labels], named)
    with pytest.raises(ValidationError, match="knows the parts"):
        tta.segment(held_out, ("top", "wheel"), options=SegmentOptions(category_model=str(checkpoint)))
    with pytest.raises(ValidationError) as e:
        tta.segment(held_out, NAMES, options=SegmentOptions(category_model=str(checkpoint / "missing")))
    assert e.value.field == "options.category_model"


def test_a_server_labels_with_an_allowed_category_model_and_refuses_others(checkpoint, tables, tmp_path):
    from partdistill.backend.service.models import ModelPolicy
    from partdistill.backend.service.server import Server
    from partdistill.shared.client import BackendClient, BackendError

    allow = tmp_path / "models.json"
    allow.write_text(json.dumps({"category_models": {"tables": str(checkpoint)}}))
    s = Server("tcp://127.0.0.1:0", models=ModelPolicy.from_file(allow))
    t = s.start()
    try:
        client = BackendClient(s.endpoint, timeout_s=30)
        res = client.segment(tables[3], NAMES[::-1], SegmentOptions(category_model="tables"))
        local = tta.segment(tables[3], NAMES[::-1], options=SegmentOptions(category_model=str(checkpoint)))
        np.testing.assert_array_equal(res.face_labels, local.face_labels)
        with pytest.raises(BackendError) as e:
            client.segment(tables[3], NAMES, SegmentOptions(category_model=str(checkpoint)))  # a path: not a name
        assert e.value.field == "options.category_model" and "not an allowed model" in e.value.message
    finally:
        s.stop()
        t.join(10)


def test_segment_with_a_category_model_from_the_cli(checkpoint, tables, tmp_path):
    bundle = save_bundle(tmp_path / "t.npz", tables[3])
    rc = cli.main(
        [
            "segment",
            str(bundle),
            "--parts",
            "leg,top",
            "--category-model",
            str(checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert rc == 0
    assert json.loads((tmp_path / "out" / "labels.json").read_text())["part_names"] == ["leg", "top"]


def test_every_painted_face_reaches_the_student_even_when_no_sample_fell_on_it(tables):
    import torch
    from partdistill.backend.pipeline.shape import prepare_shape

    cap = tables[0]
    labelled = np.full(cap.mesh.n_faces, -1, np.int32)
    smallest = np.argsort(cap.mesh.face_areas())[:3]  # tiny faces: area-weighted sampling misses them
    labelled[smallest] = 0
    assert not set(smallest.tolist()) <= set(sample_surface(cap.mesh, 256, seed=0).face.tolist())  # the premise
    shape = prepare_shape(cap, None, 256, 0, torch.device("cpu"), 8, labelled)
    assert set(smallest.tolist()) <= set(shape.points.face.tolist())
    covered = shape.units.idx[shape.units.fixed[np.repeat(np.arange(shape.units.n_units), np.diff(shape.units.ptr))]]
    assert set(shape.points.face[covered].tolist()) >= set(smallest.tolist())
    assert shape.xyz.shape[1] == shape.points.n >= 256 and shape.nbr.shape[1] == shape.points.n
