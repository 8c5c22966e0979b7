"""``partdistill bench load``: a served backend under load and faults.

The backend runs as deployed (``partdistill serve`` in its own process, clients on loopback), on
the example chair:

1. C clients x J jobs at once, each job with its own order of the part names; every answer is
   compared, part by part, with the in-process answer for the same order;
2. a client killed mid-job: seconds until the server logs its job cancelled;
3. the server killed mid-job: seconds until the waiting client hears of it;
4. N consecutive jobs: the server's RSS every N/4 jobs (growth would be a leak);
5. one large job (the chair subdivided to about 200k faces, 20 views): the server's peak RSS;
6. ``serve --ray local`` (a private Ray instance started by the server, two worker actors, each its
   own process): a client killed mid-job, seconds until its job is cancelled on its worker; a worker
   killed mid-job, what its client gets; the front server killed and started again mid-job, what the
   waiting client hears and gets; two clients at one job each at most, jobs done and refused.

The server runs with one torch thread, as does the in-process reference, so that answers compare
bit for bit."""

from __future__ import annotations

import contextlib
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
    """``partdistill serve`` in a child process (a process group of its own) on a free loopback port
    (or ``address``), its log in a file."""

    def __init__(self, log: Path, *extra: str, address: str | None = None, env: dict | None = None):
        if address is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        self.address, self.log = address, log
        env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        with open(log, "a") as fh:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--bind", self.address, *extra], env=env, stderr=fh, start_new_session=True
            )
        BackendClient(self.address, timeout_s=180).ping()  # up and answering

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
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:  # whatever the server started (a local Ray instance) goes with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


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
    return {
        "jobs": len(outcomes),
        "identical": outcomes.count("identical"),
        "seconds": time.perf_counter() - t0,
        "other": sorted(set(o for o in outcomes if o != "identical")),
        "orders": len(set(orders)),
    }


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
    p = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CLIENT, server.address, str(bundle), str(detections)],
        stdout=subprocess.PIPE,
        text=True,
    )
    p.stdout.readline()  # "distilling"
    p.kill()
    p.wait()
    return server.wait_log(r"job killed-client-job: cancelled", 60)


def killed_server(server: ServerProcess, cap, det) -> tuple[str, float]:
    """What the waiting client hears, and after how many seconds, when the server is killed mid-job
    (and nobody starts it again: the client waits its 10 s for it to come back)."""
    box: dict = {}
    started = threading.Event()

    def run():
        try:
            BackendClient(server.address, timeout_s=10).segment(
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
    return {
        "faces": big.mesh.n_faces,
        "views": big.n_views,
        "seconds": time.perf_counter() - t0,
        "peak_before_mb": before,
        "peak_after_mb": server.rss_mb(peak=True),
        "labelled": int((res.face_labels >= 0).sum()),
    }


def ray_workers() -> dict[int, str]:
    """The worker actors' processes: pid -> what each is doing (Ray names its processes)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::SegmentWorker"):
                out[int(entry.name)] = title.strip()
    return out


def _watched_job(address: str, cap, det, options: SegmentOptions, job: str | None = None) -> dict:
    """A job in a thread: ``box["running"]`` set once it distils, then its result or error, its
    progress messages and when it ended."""
    box: dict = {"running": threading.Event(), "messages": []}

    def progress(done, total, stage, message):
        box["messages"].append(message)
        if stage == "distill":
            box["running"].set()

    def run():
        try:
            box["result"] = BackendClient(address, timeout_s=120).segment(
                cap, PARTS, options, det, job=job, on_progress=progress
            )
        except Exception as e:  # noqa: BLE001 - reported
            box["error"] = f"{type(e).__name__}: {e}"
        box["ended"] = time.monotonic()

    box["thread"] = threading.Thread(target=run)
    box["thread"].start()
    return box


def on_ray(out: Path, cache: Path, example: Path, cap, det) -> dict:
    """Faults on a front door whose jobs run on a private local Ray instance (two worker actors)."""
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    args = ("--ray", "local", "--ray-workers", "2", "--client-timeout", "3", "--max-jobs-per-client", "1")
    env = {"RAY_TMPDIR": ray_tmp}
    figures: dict = {}
    server = ServerProcess(out / "server-ray.log", *args, env=env)
    try:
        figures["killed_client_s"] = killed_client(
            server, cache / "chair_v10_r512.npz", example / "chair.detections-SIMULATED.json"
        )
        job = _watched_job(server.address, cap, det, replace(SMALL, epochs=400))
        job["running"].wait(120)
        busy = [pid for pid, title in ray_workers().items() if ".run" in title]
        t0 = time.monotonic()
        for pid in busy:
            os.kill(pid, signal.SIGKILL)
        job["thread"].join(300)
        figures["killed_worker"] = {
            "workers_killed": len(busy),
            "outcome": "result" if "result" in job else job.get("error", "none"),
            "seconds": job.get("ended", float("nan")) - t0,
            "sent_again": any("sent again" in m for m in job["messages"]),
        }
        job = _watched_job(server.address, cap, det, replace(SMALL, epochs=400))
        job["running"].wait(120)
        t0 = time.monotonic()
        server.stop(kill=True)
        server = ServerProcess(out / "server-ray.log", *args, address=server.address, env=env)
        job["thread"].join(300)
        figures["restarted_server"] = {
            "outcome": "result" if "result" in job else job.get("error", "none"),
            "seconds": job.get("ended", float("nan")) - t0,
            "told_lost": any("holds no job" in m for m in job["messages"]),
        }
        figures["quotas"] = quotas(server.address, cap, det)
    finally:
        server.stop(kill=True)
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
    return figures


def quotas(address: str, cap, det) -> dict:
    """Two clients, three jobs each at once, on a server that holds one job per client."""
    outcomes: list[str] = []

    def client(name: str) -> None:
        c = BackendClient(address, timeout_s=120)

        def one():
            try:
                c.segment(cap, PARTS, SMALL, det)
                outcomes.append(f"{name}: done")
            except Exception as e:  # noqa: BLE001 - counted
                outcomes.append(f"{name}: {getattr(e, 'code', type(e).__name__)}")

        jobs = [threading.Thread(target=one) for _ in range(3)]
        for t in jobs:
            t.start()
        for t in jobs:
            t.join()

    t0 = time.perf_counter()
    clients = [threading.Thread(target=client, args=(n,)) for n in ("A", "B")]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    counts = {k: outcomes.count(k) for k in sorted(set(outcomes))}
    return {"outcomes": counts, "seconds": time.perf_counter() - t0}


def run_load(out: Path, example: Path, clients: int, jobs: int, consecutive_jobs: int, large_faces: int) -> None:
    """Run the measurements and print their figures."""
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(".cache/bench-load")
    cap, det = chair(cache, example)
    print(f"example chair: {cap.mesh.n_faces} faces, {cap.n_views} views of {cap.image_size[1]}x{cap.image_size[0]}")

    server = ServerProcess(out / "server-1.log")
    try:
        r = concurrent_clients(server, cap, det, clients, jobs)
        print(
            f"1. {clients} clients x {jobs} jobs ({r['orders']} part orders) at once: {r['identical']}/{r['jobs']} "
            f"identical to in-process, {r['seconds']:.1f} s; other outcomes: {r['other'] or 'none'}"
        )
        s = killed_client(server, cache / "chair_v10_r512.npz", example / "chair.detections-SIMULATED.json")
        print(
            f"2. client killed mid-job: its job cancelled by the server after {s:.1f} s"
            if s is not None
            else "2. client killed mid-job: its job was NOT cancelled within 60 s"
        )
        rss = consecutive(server, cap, det, consecutive_jobs)
        print(
            f"4. {consecutive_jobs} consecutive jobs, server RSS (MiB) after jobs: "
            + ", ".join(f"{i}: {m:.0f}" for i, m in rss)
        )
        what, secs = killed_server(server, cap, det)
        print(f"3. server killed mid-job: the client heard after {secs:.1f} s: {what}")
    finally:
        server.stop(kill=True)

    big = subdivide(cap, large_faces, 20)
    server = ServerProcess(out / "server-2.log")
    try:
        r = large_job(server, big, det_for(det, big))
        print(
            f"5. one job of {r['faces']} faces and {r['views']} views: {r['seconds']:.1f} s, server peak RSS "
            f"{r['peak_before_mb']:.0f} MiB idle -> {r['peak_after_mb']:.0f} MiB"
        )
    finally:
        server.stop()

    f = on_ray(out, cache, example, cap, det)
    k, w, rs, q = f["killed_client_s"], f["killed_worker"], f["restarted_server"], f["quotas"]
    print("6. serve --ray local, two worker actors (processes):")
    print(
        f"   a client killed mid-job: its job cancelled on its worker after {k:.1f} s"
        if k is not None
        else "   a client killed mid-job: its job was NOT cancelled within 60 s"
    )
    print(
        f"   a worker killed mid-job ({w['workers_killed']} process): the client got {w['outcome']} "
        f"{w['seconds']:.1f} s later (sent again: {w['sent_again']})"
    )
    print(
        f"   the front server killed and started again mid-job: the client got {rs['outcome']} {rs['seconds']:.1f} s "
        f"later (told the job was lost and sent it again: {rs['told_lost']})"
    )
    print(f"   two clients, three jobs each at once, one job per client held: {q['outcomes']} in {q['seconds']:.1f} s")


def det_for(det: Detections, big: Capture) -> Detections:
    """The chair's detections repeated for the large capture's repeated views."""
    reps = -(-big.n_views // len(det.views))
    return Detections(det.part_names, (list(det.views) * reps)[: big.n_views], det.image_size)
