"""The sidebar panel (View3D > Sidebar > PartDistill)."""

from __future__ import annotations

import bpy

from .apply import result_labels
from .apply_points import point_result_labels
from .preferences import preferences


class _Sidebar:
    """Where the add-on's panels live: View3D > Sidebar > PartDistill."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "PartDistill"


class PARTDISTILL_PT_panel(_Sidebar, bpy.types.Panel):
    bl_label = "PartDistill"
    bl_idname = "PARTDISTILL_PT_panel"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.partdistill
        state = context.window_manager.partdistill
        layout.prop(s, "preset")
        layout.prop(s, "parts")
        prefs = preferences(context)
        row = layout.row(align=True)
        if isinstance(prefs, bpy.types.AddonPreferences):
            row.prop(prefs, "backend")
        else:
            row.label(text=f"Backend: {prefs.backend}")
        row.operator("partdistill.check_backend", text="", icon="LINKED")
        if state.running:
            layout.progress(factor=state.progress, text=state.message)
            layout.operator("partdistill.cancel", icon="CANCEL")
        else:
            layout.operator("partdistill.segment", icon="MOD_EXPLODE")
            if state.message:
                layout.label(text=state.message)
        obj = context.active_object
        found = result_labels(obj) if obj is not None and obj.type == "MESH" else None
        points = point_result_labels(obj) if obj is not None else None
        if points is not None:  # a point cloud's legend: no material slots, only counts
            box = layout.box()
            for i, name in enumerate(points[0]):
                box.label(text=f"{name}: {int((points[1] == i).sum())} points")
            box.operator("partdistill.clear", icon="X")
        if found is not None:
            names, labels = found
            box = layout.box()
            materials = {m.get("partdistill_part"): m for m in obj.data.materials if m is not None}
            for i, name in enumerate(names):  # the legend: each part's colour swatch and face count
                row = box.row()
                mat = materials.get(name)
                if mat is not None:
                    row.prop(mat, "diffuse_color", text="")
                row.label(text=f"{name}: {int((labels == i).sum())} faces")
            row = box.row(align=True)
            row.operator("partdistill.vertex_groups", icon="GROUP_VERTEX")
            row.operator("partdistill.split", icon="MOD_EXPLODE")
            row = box.row(align=True)
            row.operator("partdistill.refine", icon="FILE_REFRESH")
            row.operator("partdistill.clear", icon="X")


class PARTDISTILL_PT_options(_Sidebar, bpy.types.Panel):
    bl_label = "Options"
    bl_idname = "PARTDISTILL_PT_options"
    bl_parent_id = "PARTDISTILL_PT_panel"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.partdistill
        layout.use_property_split = True
        for prop in (
            "method",
            "collection_mode",
            "collection_frame",
            "category_model",
            "teacher",
            "teacher_model",
            "prompt_template",
            "object_name",
            "box_threshold",
            "text_threshold",
            "sam",
            "sam_model",
            "detections",
            "cameras",
            "render",
            "n_views",
            "resolution",
            "epochs",
        ):
            row = layout.row()
            row.prop(s, prop)
            row.enabled = prop != "sam_model" or s.sam


CLASSES = (PARTDISTILL_PT_panel, PARTDISTILL_PT_options)
