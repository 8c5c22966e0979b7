"""Outputs that are never half there: a file replaced whole or not at all, a set of files renamed in
together, a folder two runs cannot share, a destination checked before the work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from partdistill.shared.atomic import (
    LOCK_NAME,
    FolderLock,
    atomic_file,
    check_writable,
    replace_together,
    temporary_name,
)
from partdistill.shared.errors import ValidationError


def test_a_file_written_atomically_replaces_the_old_one_only_when_complete(tmp_path):
    path = tmp_path / "b.npz"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as tmp:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]
    with atomic_file(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]


def test_a_temporary_name_is_hidden_beside_the_file_and_keeps_its_suffix(tmp_path):
    tmp = temporary_name(tmp_path / "preview.png")
    assert tmp.parent == tmp_path and tmp.name.startswith(".preview.") and tmp.suffix == ".png"


def test_files_replaced_together_take_the_old_set_away_with_them(tmp_path):
    for name in ("a.txt", "b.txt", "loss.png"):
        (tmp_path / name).write_text("old")
    written = {}
    for name in ("a.txt", "b.txt"):
        written[name] = temporary_name(tmp_path / name)
        written[name].write_text("new")
    replace_together(tmp_path, written, stale=("a.txt", "b.txt", "loss.png"))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.txt": "new", "b.txt": "new"}


def test_ctrl_c_during_the_renames_waits_until_the_set_is_in_place(tmp_path):
    """SIGINT sent while the renames run is delivered after the last one."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from partdistill.shared import atomic
        folder = Path({str(tmp_path)!r})
        written = {{}}
        for k in range(200):
            written[f"f{{k}}"] = atomic.temporary_name(folder / f"f{{k}}")
            written[f"f{{k}}"].write_text("new")
        real = os.replace
        def replace_and_interrupt(a, b):
            real(a, b)
            if b.name == "f0":
                os.kill(os.getpid(), signal.SIGINT)
        os.replace = replace_and_interrupt
        try:
            atomic.replace_together(folder, written)
        except KeyboardInterrupt:
            print("interrupted after", len(list(folder.glob("f*"))))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "interrupted after 200", r.stdout + r.stderr


def test_a_second_run_into_a_locked_folder_is_refused_by_name(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, field="--out"):
        assert (out / LOCK_NAME).read_text() == str(os.getpid())
        with pytest.raises(ValidationError, match=rf"--out: {out} is in use by another partdistill run \(process"):
            FolderLock(out, field="--out").__enter__()
        (out / "labels.npz").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["labels.npz"]  # the lock goes with the run
    with FolderLock(out):  # and the folder can be taken again
        pass


def test_a_lock_held_by_another_process_is_refused_and_freed_when_that_process_dies(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from partdistill.shared.atomic import FolderLock\n"
            f"l = FolderLock({str(out)!r}).__enter__()\nprint('held', flush=True)\nimport time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValidationError, match=f"process {holder.pid}"):
            FolderLock(out).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(out):  # the operating system dropped the dead holder's lock
        pass


def test_a_folder_made_for_a_run_that_wrote_nothing_is_removed(tmp_path):
    with FolderLock(tmp_path / "new" / "out"):
        assert (tmp_path / "new" / "out").is_dir()
    assert not (tmp_path / "new" / "out").exists()


def test_a_lock_on_a_file_or_an_unwritable_place_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        FolderLock(tmp_path / "file").__enter__()
    with pytest.raises(ValidationError, match="cannot write to"):
        FolderLock("/proc/partdistill-test/out").__enter__()


def test_a_destination_that_cannot_be_written_is_refused_before_the_work(tmp_path):
    check_writable(tmp_path / "new" / "b.npz", "--out")  # a folder to be made is fine
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(ValidationError, match="is a folder"):
        check_writable(tmp_path, "--out")
    with pytest.raises(ValidationError, match="--out: cannot write /proc/b.npz"):
        check_writable("/proc/b.npz", "--out")
