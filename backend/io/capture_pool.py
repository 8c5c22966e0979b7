"""Many mesh files captured by a few long-lived headless-Blender child processes.

Blender's start-up
(about 2 s) is paid once per process, not per mesh, and the captures arrive one by one while the
caller works on the earlier ones. One file that cannot be captured is reported with its reason and
the others go on.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError
from partdistill.shared.mesh_files import check_mesh_file

from .inputs import blender_env, capture_point_file, headless_command, is_point_cloud_file


def capture_files(
    paths: Sequence[Path], *, views: int, resolution: int, workers: int = 1, engine: str = "auto"
) -> Iterator[tuple[int, Capture | str]]:
    """Yield ``(i, capture)`` for each ``paths[i]`` as it is captured, or ``(i, reason)`` when it
    cannot be. Capture bundles (``.npz``) are read as they are; mesh files are checked, then captured
    by ``workers`` Blender child processes (each takes every ``workers``-th file)."""
    meshes = []
    for i, p in enumerate(paths):
        try:
            if is_point_cloud_file(p):  # numpy, in this process: no Blender needed
                yield i, capture_point_file(p, views=views, resolution=resolution)
                continue
            if p.suffix.lower() == ".npz":
                yield i, load_bundle(p)
                continue
            check_mesh_file(p)
        except (ValidationError, OSError) as e:
            yield i, str(e.problem if isinstance(e, ValidationError) else e)
            continue
        meshes.append(i)
    if meshes:
        yield from _capture_in_children(paths, meshes, views, resolution, max(1, min(workers, len(meshes))), engine)


def _capture_in_children(paths, todo: list[int], views: int, resolution: int, workers: int, engine: str):
    with tempfile.TemporaryDirectory(prefix="partdistill-batch-") as tmp:
        lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
        chunks = [todo[w::workers] for w in range(workers)]
        procs = []
        for w, chunk in enumerate(chunks):
            spec = [{"input": str(paths[i]), "output": str(Path(tmp) / f"{w}_{k}.npz")} for k, i in enumerate(chunk)]
            jobs = Path(tmp) / f"jobs_{w}.json"
            jobs.write_text(json.dumps(spec))
            cmd = headless_command("capture-many", str(jobs), views=views, resolution=resolution, engine=engine)
            cmd.append("--no-compress")
            procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                    env=blender_env(),
                    bufsize=1,
                )
            )
            threading.Thread(target=_pump, args=(w, procs[-1], lines), daemon=True).start()
        reported: list[set[int]] = [set() for _ in procs]
        tails: list[list[str]] = [[] for _ in procs]
        open_streams = len(procs)
        try:
            while open_streams:
                w, line = lines.get()
                if line is None:
                    open_streams -= 1
                    continue
                tails[w] = (tails[w] + [line])[-10:]
                for tag in ("partdistill: captured ", "partdistill: failed "):
                    if line.startswith(tag):
                        rest = line.removeprefix(tag)
                        k = int(rest.split("/")[0]) - 1
                        reported[w].add(k)
                        i = chunks[w][k]
                        if tag.endswith("captured "):
                            raw = Path(tmp) / f"{w}_{k}.npz"
                            try:
                                yield i, load_bundle(raw)
                            finally:
                                raw.unlink(missing_ok=True)
                        else:
                            yield i, rest.split(": ", 1)[-1]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        for w, p in enumerate(procs):  # a child that died takes the rest of its share with it
            why = _why_dead(p.returncode, tails[w])
            for k, i in enumerate(chunks[w]):
                if k not in reported[w]:
                    yield i, why


def _why_dead(returncode: int, tail: list[str]) -> str:
    text = " ".join(tail)
    if "No module named 'bpy'" in text:
        return "Blender as a Python module (bpy) is not installed: `pip install 'partdistill[blender]'`"
    last = next((t for t in reversed(tail) if t.strip()), "")
    return f"headless Blender stopped (exit status {returncode}) before capturing it: {last[-200:]}"


def _pump(worker: int, proc: subprocess.Popen, lines: queue.Queue) -> None:
    """A child's output lines into the queue, None at its end (read to the end: it never blocks)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put((worker, line.rstrip("\n")))
    lines.put((worker, None))
