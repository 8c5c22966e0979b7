"""Data-parallel Pre with torch.distributed: ``torchrun`` with 2 CPU processes (gloo) fits the same
student as one process taking the same steps (``--shapes-per-step 2``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from partdistill.backend.checkpoint import load_checkpoint
from partdistill.backend.pipeline.distill import DistillConfig, distill
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.bundle import save_bundle
from test_pre_alignment import NAMES, table

CLI = [sys.executable, "-m", "partdistill.backend.cli"]
FIT = ["fit", "--parts", ",".join(NAMES), "--epochs", "12", "--points", "512", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("collection")
    shapes = [(1.0, 0.9, 0.06), (1.2, 0.7, 0.05), (0.8, 1.0, 0.08), (1.1, 0.8, 0.07), (0.9, 0.8, 0.05)]
    for k, (w, h, leg) in enumerate(shapes):  # five shapes: the processes' shares differ in size
        cap = table(w, h, leg)
        save_bundle(folder / f"table{k}.npz", cap)
        simulate_detections(cap, seed=k).save_json(folder / f"table{k}.detections.json")
    return folder


def _fit(args, env=None):
    run_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    r = subprocess.run(args, capture_output=True, text=True, env=run_env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_two_gloo_processes_fit_the_student_one_process_fits_with_the_same_steps(collection, tmp_path):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--log-dir",
        str(tmp_path / "torchrun-logs"),
    ]
    r = _fit([*torchrun, "-m", "partdistill.backend.cli", *FIT, str(collection), "--out", str(tmp_path / "two")])
    assert "2 process(es)" in r.stdout and r.stdout.count("fitted on") == 1  # only rank 0 writes and prints
    _fit([*CLI, *FIT, str(collection), "--out", str(tmp_path / "one"), "--shapes-per-step", "2"])
    two, one = load_checkpoint(tmp_path / "two"), load_checkpoint(tmp_path / "one")
    assert two.meta["training"]["n_units"] == one.meta["training"]["n_units"]
    np.testing.assert_allclose(two.meta["training"]["loss"], one.meta["training"]["loss"], rtol=1e-4, atol=1e-5)
    a, b = two.student.state_dict(), one.student.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-3, atol=1e-4, err_msg=k)


def test_closing_a_data_parallel_job_takes_its_process_group_down(tmp_path):
    """A process must leave its gloo group before it exits: one left alive can abort the process
    while the interpreter shuts down."""
    import torch.distributed as dist
    from partdistill.backend.parallel import DataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    DataParallel(rank=0, world=1).close()
    assert not dist.is_initialized()


def test_bigger_steps_take_fewer_optimiser_steps():
    """shapes_per_step=2 takes the mean of two shapes' losses per step: half the steps of 1."""
    import torch

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(3))
    from partdistill.backend.pipeline.lift import KnowledgeUnits

    def one_unit(part: int) -> KnowledgeUnits:
        one = np.ones(1, np.float32)
        return KnowledgeUnits(
            np.array([part]),
            one,
            one.copy(),
            np.zeros(1, np.int32),
            np.zeros(1, bool),
            np.array([0, 2]),
            np.array([0, 1]),
            np.array([2]),
            n_points=2,
        )

    units = [one_unit(k % 3) for k in range(4)]
    steps = []
    opt_step = torch.optim.Adam.step

    def counting(self, *a, **kw):
        steps.append(1)
        return opt_step(self, *a, **kw)

    torch.optim.Adam.step = counting
    try:
        for per_step in (1, 2):
            steps.clear()
            distill(
                lambda i: w.expand(2, 3),
                [w],
                units,
                3,
                DistillConfig(epochs=3, backward=False),
                shapes_per_step=per_step,
            )
            assert len(steps) == 3 * 4 // per_step
    finally:
        torch.optim.Adam.step = opt_step
