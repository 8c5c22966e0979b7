"""``partdistill bench load``: a backend under load and faults, as deployed (``partdistill serve`` in its
own process, clients on loopback), on the example chair:

1. C clients x J jobs at once, each job with its own order of the part names; every answer is
   compared, part by part, with the in-process answer for the same order;
2. a client killed mid-job: seconds until the server logs its job cancelled;
3. the server killed mid-job: seconds until the waiting client hears of it;
4. N consecutive jobs: the server's RSS every N/4 jobs (growth would be a leak);
5. one large job (the chair subdivided to about 200k faces, 20 views): the server's peak RSS.

The server runs with one torch thread, as does the in-process reference, so that answers compare
bit for bit."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.client import BackendClient, BackendGone, BackendTimeout
from partdistill.shared.detections import Detections
from partdistill.shared.options import SegmentOptions

CLI = [sys.executable, "-m", "partdistill.backend.cli"]
PARTS = ("seat", "back", "leg", "arm")
SMALL = SegmentOptions(n_points=1024, epochs=20, refine="none")


def chair(cache: Path, example: Path) -> tuple[Capture, Detections]:
    """The example chair's capture (captured once through Blender, then cached) and its detections."""
    bundle = cache / "chair_v10_r512.npz"
    if not bundle.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([*CLI, "capture", str(example / "chair.obj"), "--out", str(bundle)], check=True)
    return load_bundle(bundle), Detections.load_json(example / "chair.detections-SIMULATED.json")


def subdivide(capture: Capture, min_faces: int, views: int) -> Capture:
    """The capture with every triangle split in four until it has ``min_faces``, and its views
    repeated up to ``views``; each pixel keeps a child of the face it showed."""
    v, f, fid = capture.mesh.vertices.astype(np.float32), capture.mesh.faces, capture.face_id
    while len(f) < min_faces:
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        n = len(v)
        mids = np.concatenate([(v[a] + v[b]) / 2, (v[b] + v[c]) / 2, (v[c] + v[a]) / 2])
        ab, bc, ca = n + np.arange(len(f)), n + len(f) + np.arange(len(f)), n + 2 * len(f) + np.arange(len(f))
        v = np.concatenate([v, mids]).astype(np.float32)
        f = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]).astype(
            np.int32
        )
        fid = np.where(fid >= 0, fid + 3 * (len(f) // 4), -1).astype(np.int32)  # the centre child
    reps = -(-views // capture.n_views)
    take = lambda x: np.concatenate([x] * reps)[:views]  # noqa: E731
    ortho = None if capture.orthographic is None else take(capture.orthographic)
    views_of = (take(capture.rgb), take(fid), take(capture.K), take(capture.world_to_cam))
    return Capture(Mesh(v, f), *views_of, orthographic=ortho).validate()


class ServerProcess:
    """``partdistill serve`` in a child process on a free loopback port, its log in a file."""

    def __init__(self, log: Path, *extra: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        self.log = log
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([*CLI, "serve", "--bind", self.address, *extra], env=env,
                                     stderr=open(log, "w"))  # fmt: skip
        BackendClient(self.address, timeout_s=120).ping()  # up and answering

    def rss_mb(self, peak: bool = False) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"{'VmHWM' if peak else 'VmRSS'}:\s+(\d+)", text).group(1)) / 1024

    def wait_log(self, pattern: str, timeout_s: float) -> float | None:
        """Seconds until ``pattern`` appears in the log, None if it does not within ``timeout_s``."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if re.search(pattern, self.log.read_text()):
                return time.monotonic() - t0
            time.sleep(0.02)
        return None

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
            self.proc.wait(30)


def _named(res) -> np.ndarray:
    return np.asarray(res.part_names)[res.face_labels]


def concurrent_clients(server: ServerProcess, cap, det, clients: int, jobs: int, seed: int = 0) -> dict:
    import torch
    from partdistill.backend.tta import segment

    rng = random.Random(seed)
    orders = [tuple(rng.sample(PARTS, len(PARTS))) for _ in range(clients * jobs)]
    torch.set_num_threads(1)
    reference = {o: _named(segment(cap, o, options=SMALL, detections=det)) for o in set(orders)}
    outcomes: list[str] = []

    def client(k: int) -> None:
        c = BackendClient(server.address, timeout_s=120)
        for j in range(jobs):
            order = orders[k * jobs + j]
            try:
                res = c.segment(cap, order, SMALL, det)
                same = res.part_names == order and np.array_equal(_named(res), reference[order])
                outcomes.append("identical" if same else "different")
            except Exception as e:  # noqa: BLE001 - counted and printed
                outcomes.append(f"{type(e).__name__}: {e}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"jobs": len(outcomes), "identical": outcomes.count("identical"), "seconds": time.perf_counter() - t0,
            "other": sorted(set(o for o in outcomes if o != "identical")), "orders": len(set(orders))}  # fmt: skip


_KILLED_CLIENT = """
import sys
from partdistill.shared.bundle import load_bundle
from partdistill.shared.client import BackendClient
from partdistill.shared.detections import Detections
from partdistill.shared.options import SegmentOptions
cap, det = load_bundle(sys.argv[2]), Detections.load_json(sys.argv[3])
def progress(done, total, stage, message):
    if stage == "distill":
        print("distilling", flush=True)
BackendClient(sys.argv[1], timeout_s=60).segment(cap, ("seat", "back", "leg", "arm"),
    SegmentOptions(n_points=1024, epochs=2000), det, on_progress=progress, job="killed-client-job")
"""


def killed_client(server: ServerProcess, bundle: Path, detections: Path) -> float | None:
    """Seconds from killing a client mid-job to the server logging that job cancelled."""
    p = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, server.address, str(bundle), str(detections)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    p.stdout.readline()  # "distilling"
    p.kill()
    p.wait()
    return server.wait_log(r"job killed-client-job: cancelled", 60)


def killed_server(server: ServerProcess, cap, det) -> tuple[str, float]:
    """What the waiting client hears, and after how many seconds, when the server is killed mid-job."""
    box: dict = {}
    started = threading.Event()

    def run():
        try:
            BackendClient(server.address, timeout_s=60).segment(
                cap, PARTS, replace(SMALL, epochs=2000), det, on_progress=lambda *a: started.set()
            )
        except (BackendGone, BackendTimeout) as e:
            box["what"], box["at"] = f"{type(e).__name__}: {e}", time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    started.wait(120)
    time.sleep(1.0)
    t0 = time.monotonic()
    server.stop(kill=True)
    t.join(120)
    return box.get("what", "nothing"), box.get("at", float("nan")) - t0


def consecutive(server: ServerProcess, cap, det, n: int) -> list[tuple[int, float]]:
    """The server's RSS (MiB) before and after every n/4 of ``n`` consecutive jobs."""
    c = BackendClient(server.address, timeout_s=120)
    out = [(0, server.rss_mb())]
    for i in range(n):
        c.segment(cap, PARTS, SMALL, det)
        if (i + 1) % max(1, n // 4) == 0:
            out.append((i + 1, server.rss_mb()))
    return out


def large_job(server: ServerProcess, big: Capture, det: Detections) -> dict:
    before = server.rss_mb(peak=True)
    t0 = time.perf_counter()
    res = BackendClient(server.address, timeout_s=300).segment(big, PARTS, SegmentOptions(), det)
    return {"faces": big.mesh.n_faces, "views": big.n_views, "seconds": time.perf_counter() - t0,
            "peak_before_mb": before, "peak_after_mb": server.rss_mb(peak=True),
            "labelled": int((res.face_labels >= 0).sum())}  # fmt: skip


def run_load(out: Path, example: Path, clients: int, jobs: int, consecutive_jobs: int, large_faces: int) -> None:
    """Run the five measurements and print their figures."""
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(".cache/bench-load")
    cap, det = chair(cache, example)
    print(f"example chair: {cap.mesh.n_faces} faces, {cap.n_views} views of {cap.image_size[1]}x{cap.image_size[0]}")

    server = ServerProcess(out / "server-1.log")
    try:
        r = concurrent_clients(server, cap, det, clients, jobs)
        print(f"1. {clients} clients x {jobs} jobs ({r['orders']} part orders) at once: {r['identical']}/{r['jobs']} "
              f"identical to in-process, {r['seconds']:.1f} s; other outcomes: {r['other'] or 'none'}")  # fmt: skip
        s = killed_client(server, cache / "chair_v10_r512.npz", example / "chair.detections-SIMULATED.json")
        print(f"2. client killed mid-job: its job cancelled by the server after {s:.1f} s" if s is not None
              else "2. client killed mid-job: its job was NOT cancelled within 60 s")  # fmt: skip
        rss = consecutive(server, cap, det, consecutive_jobs)
        print(f"4. {consecutive_jobs} consecutive jobs, server RSS (MiB) after jobs: "
              + ", ".join(f"{i}: {m:.0f}" for i, m in rss))  # fmt: skip
        what, secs = killed_server(server, cap, det)
        print(f"3. server killed mid-job: the client heard after {secs:.1f} s: {what}")
    finally:
        server.stop(kill=True)

    big = subdivide(cap, large_faces, 20)
    server = ServerProcess(out / "server-2.log")
    try:
        r = large_job(server, big, det_for(det, big))
        print(f"5. one job of {r['faces']} faces and {r['views']} views: {r['seconds']:.1f} s, server peak RSS "
              f"{r['peak_before_mb']:.0f} MiB idle -> {r['peak_after_mb']:.0f} MiB")  # fmt: skip
    finally:
        server.stop()


def det_for(det: Detections, big: Capture) -> Detections:
    """The chair's detections repeated for the large capture's repeated views."""
    reps = -(-big.n_views // len(det.views))
    return Detections(det.part_names, (list(det.views) * reps)[: big.n_views], det.image_size)
