"""The benchmarks' engine arguments reach the options every run is made with, and so its key: runs
of another ``--seed`` are new runs, kept beside the others, never taken for them."""

from __future__ import annotations

from pathlib import Path

from partdistill.backend.cli import build_parser
from partdistill.bench.commands import _setup
from partdistill.bench.psb import RealShape
from partdistill.bench.real import run_key


def test_bench_real_seed_sets_the_students_seed_and_makes_other_runs():
    parser = build_parser()
    default = _setup(parser.parse_args(["bench", "real"])).options
    seeded = _setup(parser.parse_args(["bench", "real", "--seed", "1", "--epochs", "7"])).options
    assert (default.seed, seeded.seed, seeded.epochs) == (0, 1, 7)
    shape = RealShape("Bird", 241, "val", Path("Bird_241.npz"), 100, ("head", "body"))
    keys = {run_key(shape, "box", "realistic", m, o) for m in ("distill", "superpoint") for o in (default, seeded)}
    assert len(keys) == 4
