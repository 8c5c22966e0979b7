"""partdistill for Blender: segment a mesh into named parts on a partdistill backend.

A vision-language-model teacher distilled into a 3D student, on a partdistill backend
(`partdistill serve`).

Registers as a Blender >= 4.2 extension (see blender_manifest.toml) or as a plain add-on package.
Never imports torch: the backend owns the models.
"""

from __future__ import annotations


def register() -> None:
    import bpy

    from . import operators, preferences, properties, ui

    properties.register()
    for c in (*preferences.CLASSES, *operators.CLASSES, *ui.CLASSES):
        bpy.utils.register_class(c)


def unregister() -> None:
    import bpy

    from . import operators, preferences, properties, ui

    preferences.stop_local_backend()
    for c in reversed((*preferences.CLASSES, *operators.CLASSES, *ui.CLASSES)):
        bpy.utils.unregister_class(c)
    properties.unregister()
