"""The add-on's preferences: the machine's settings and the local backend.

Edit > Preferences > Add-ons > PartDistill: the machine's settings, not the scene's — where the
backend is, the keys to reach it, and a local backend that Blender starts and stops itself (its
status and the end of its log shown there)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bpy
from bpy.props import FloatProperty, StringProperty
from partdistill.shared.client import DEFAULT_ADDRESS, BackendClient, BackendError, BackendTimeout
from partdistill.shared.errors import ValidationError
from partdistill.shared.keys import read_key
from partdistill.shared.protocol import check_address

from .properties import file_property

ADDON = __package__  # the add-on's module: "partdistill.blender_addon", or bl_ext.<repo>.partdistill

_local: dict[str, object] = {"proc": None, "log": None}  # the local backend this Blender started


class PartDistillPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    backend: StringProperty(name="Backend", description="Address of `partdistill serve`", default=DEFAULT_ADDRESS)  # type: ignore[valid-type]
    server_key: file_property("Server Key", "The backend's public key file (server.key), for an encrypted backend")  # type: ignore[valid-type]
    client_key: file_property("Client Key", "This machine's NAME.key_secret, where the backend lets in listed clients")  # type: ignore[valid-type]
    timeout: FloatProperty(
        name="Timeout",
        default=30.0,
        min=1.0,
        max=3600.0,
        subtype="TIME_ABSOLUTE",
        description="Seconds of backend silence before giving up",
    )  # type: ignore[valid-type]
    local_command: file_property(
        "Backend Command", "The `partdistill` program of a backend install on this machine (empty: the one on PATH)"
    )  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        for prop in ("backend", "server_key", "client_key", "timeout"):
            layout.prop(self, prop)
        box = layout.box()
        box.label(text="Local backend")
        box.prop(self, "local_command")
        row = box.row()
        row.label(text=local_status())
        if local_running():
            row.operator("partdistill.stop_local_backend", icon="CANCEL")
        else:
            row.operator("partdistill.start_local_backend", icon="PLAY")
        for line in local_log_tail(5):
            box.label(text=line)


class _Defaults:
    """The preferences' defaults, where the add-on runs without Blender's add-on registry (scripts
    that call ``register()`` themselves)."""

    backend, server_key, client_key, timeout, local_command = DEFAULT_ADDRESS, "", "", 30.0, ""


_DEFAULTS = _Defaults()


def preferences(context: bpy.types.Context | None = None):
    """The add-on's preferences; outside Blender's add-on registry, one settable set of defaults."""
    addon = (context or bpy.context).preferences.addons.get(ADDON)
    return addon.preferences if addon is not None else _DEFAULTS


def client(prefs) -> BackendClient:
    """A client of the backend the preferences name, with their keys; ValidationError names a bad
    address or key file."""
    server = read_key(Path(bpy.path.abspath(prefs.server_key))) if prefs.server_key.strip() else None
    mine = (None, None)
    if prefs.client_key.strip():
        path = Path(bpy.path.abspath(prefs.client_key))
        mine = (read_key(path), read_key(path, secret=True))
    return BackendClient(
        prefs.backend.strip(),
        timeout_s=prefs.timeout,
        server_public_key=server,
        client_public_key=mine[0],
        client_secret_key=mine[1],
    )


def describe_backend(prefs, timeout_s: float) -> str:
    """One line on the backend the preferences name (version, device, teachers, round trip); raises
    BackendError, BackendTimeout or ValidationError."""
    c = client(prefs)
    hello = c.hello(timeout_s=timeout_s)
    rtt = c.ping(timeout_s=timeout_s)
    return (
        f"partdistill {hello.get('version')} on {hello.get('device')}, teachers {hello.get('teachers')}, "
        f"ping {1000 * rtt:.1f} ms"
    )


# ---- the local backend -------------------------------------------------------------------------


def local_running() -> bool:
    proc = _local["proc"]
    return proc is not None and proc.poll() is None


def local_status() -> str:
    proc = _local["proc"]
    if proc is None:
        return "Not started from Blender"
    if proc.poll() is None:
        return f"Running (process {proc.pid})"
    return f"Stopped (exit status {proc.returncode})"


def local_log_tail(n: int) -> list[str]:
    log = _local["log"]
    if log is None or not Path(log).exists():
        return []
    return [ln[:120] for ln in Path(log).read_text(errors="replace").splitlines()[-n:]]


def start_local_backend(prefs) -> str:
    """Start ``partdistill serve`` on the preferences' (loopback) address; returns its log file."""
    if local_running():
        raise ValidationError("local backend", "already running")
    address = check_address(prefs.backend.strip(), "backend")
    command = bpy.path.abspath(prefs.local_command) if prefs.local_command.strip() else shutil.which("partdistill")
    if not command or not Path(command).exists():
        raise ValidationError("local backend", "no `partdistill` program found: set Backend Command in the preferences")
    log = Path(bpy.app.tempdir or tempfile.gettempdir()) / "partdistill-backend.log"  # Blender removes it on quit
    with open(log, "w") as fh:
        _local["proc"] = subprocess.Popen(
            [command, "serve", "--bind", address],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=sys.platform != "win32",
        )
    _local["log"] = str(log)
    return str(log)


def stop_local_backend(timeout_s: float = 10.0) -> None:
    """Stop the local backend (Ctrl+C: its waiting clients hear that it shuts down)."""
    proc = _local["proc"]
    if proc is None or proc.poll() is not None:
        return
    import signal

    proc.send_signal(signal.SIGINT if sys.platform != "win32" else signal.CTRL_C_EVENT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PARTDISTILL_OT_start_local_backend(bpy.types.Operator):
    """Start a partdistill backend on this machine, at the address in the preferences"""

    bl_idname = "partdistill.start_local_backend"
    bl_label = "Start"

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs, log = preferences(context), None
        try:
            log = start_local_backend(prefs)
            about = describe_backend(prefs, timeout_s=60)  # the first answer waits for torch to load
        except (BackendError, BackendTimeout, ValidationError) as e:
            where = f" (the local backend's log: {log})" if log else ""
            self.report({"ERROR"}, f"partdistill: {e}{where}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{about}, running on {prefs.backend}")
        return {"FINISHED"}


class PARTDISTILL_OT_stop_local_backend(bpy.types.Operator):
    """Stop the partdistill backend Blender started"""

    bl_idname = "partdistill.stop_local_backend"
    bl_label = "Stop"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not local_running():
            cls.poll_message_set("No local backend is running")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        stop_local_backend()
        self.report({"INFO"}, "partdistill: local backend stopped")
        return {"FINISHED"}


CLASSES = (PartDistillPreferences, PARTDISTILL_OT_start_local_backend, PARTDISTILL_OT_stop_local_backend)
