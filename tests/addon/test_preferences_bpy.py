"""The add-on's preferences, enabled through Blender's own add-on registry: the backend and keys
live there (not in the scene), and Blender starts, checks and stops a local backend itself."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402
from partdistill.blender_addon import preferences as prefs_module  # noqa: E402

MODULE = "partdistill.blender_addon"


@pytest.fixture
def prefs(bpy_empty):
    for cls in ("Scene",):  # an earlier test may have registered the add-on by hand
        if hasattr(getattr(bpy.types, cls), "partdistill"):
            import partdistill.blender_addon as addon

            addon.unregister()
    addon_utils.enable(MODULE, default_set=True, handle_error=None)
    yield bpy.context.preferences.addons[MODULE].preferences
    prefs_module.stop_local_backend()
    addon_utils.disable(MODULE, default_set=True)


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_the_machine_settings_are_preferences_not_scene_settings(prefs):
    assert prefs_module.preferences(bpy.context) == prefs
    assert prefs.backend.startswith("tcp://") and "backend" not in bpy.context.scene.partdistill.bl_rna.properties


def test_blender_starts_checks_and_stops_a_local_backend(prefs):
    prefs.backend = _free_address()
    prefs.local_command = str(Path(sys.executable).with_name("partdistill"))
    assert not bpy.ops.partdistill.stop_local_backend.poll()
    assert bpy.ops.partdistill.start_local_backend() == {"FINISHED"}
    assert prefs_module.local_status().startswith("Running")
    assert bpy.ops.partdistill.check_backend() == {"FINISHED"}
    assert any("partdistill backend" in line for line in prefs_module.local_log_tail(5))
    assert bpy.ops.partdistill.stop_local_backend() == {"FINISHED"}
    assert prefs_module.local_status().startswith("Stopped") and not bpy.ops.partdistill.stop_local_backend.poll()


def test_a_garbage_key_file_in_the_preferences_is_a_clear_error(prefs, tmp_path):
    key = tmp_path / "server.key"
    key.write_text("not a key")
    prefs.server_key = str(key)
    with pytest.raises(RuntimeError, match="server.key"):
        bpy.ops.partdistill.check_backend()
