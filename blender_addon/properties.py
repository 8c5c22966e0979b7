"""The add-on's per-scene settings and its runtime state.

The settings are saved with the scene, the state is not; the machine's settings (backend, keys) are
preferences (``preferences.py``)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from partdistill.shared.options import SegmentOptions
from partdistill.shared.presets import PARTNET_E, SHAPENET_PART


def _preset_items() -> list[tuple[str, str, str]]:
    items = [("CUSTOM", "Custom", "Type the part names yourself")]
    for prefix, group, table in (("SNP", "ShapeNetPart", SHAPENET_PART), ("PNE", "PartNetE", PARTNET_E)):
        items += [(f"{prefix}_{k}", f"{k} ({group})", f"{group} {k}: {', '.join(v)}") for k, v in table.items()]
    return items


PRESET_ITEMS = _preset_items()


def preset_parts(identifier: str) -> tuple[str, ...] | None:
    """The part names of a preset identifier ("SNP_Chair", "PNE_Kettle"), None for "CUSTOM"."""
    prefix, _, name = identifier.partition("_")
    return {"SNP": SHAPENET_PART, "PNE": PARTNET_E}.get(prefix, {}).get(name)


def fraction_property(name: str, default: float, description: str):
    """A setting in [0, 1] (a threshold)."""
    return FloatProperty(name=name, default=default, min=0.0, max=1.0, description=description)


def file_property(name: str, description: str):
    """A file path, with Blender's file browser."""
    return StringProperty(name=name, description=description, subtype="FILE_PATH")


def _apply_preset(self, context) -> None:
    parts = preset_parts(self.preset)
    if parts is not None:
        self.parts = ", ".join(parts)


METHOD_ITEMS = [
    ("distill", "Distill", "2D teacher -> knowledge units -> 3D student (PartDistill)"),
    ("vote", "Vote", "Thresholded multi-view vote of the teacher's boxes (baseline; may leave gaps)"),
    ("vote-fill", "Vote + fill", "Score-weighted vote per face, gaps filled along the surface (baseline)"),
    ("superpoint", "Superpoint vote", "Votes pooled over geometric patches, as PartSLIP does (baseline)"),
]

TEACHER_ITEMS = [
    ("grounding_dino", "Grounding DINO", "Box vision-language model (IDEA-Research/grounding-dino-tiny)"),
    ("owlv2", "OWLv2", "Box vision-language model (google/owlv2-base-patch16-ensemble)"),
    ("clipseg", "CLIPSeg", "Mask vision-language model (CIDAS/clipseg-rd64-refined)"),
]

CAMERA_ITEMS = [
    ("RING", "Ring", "A temporary ring of cameras around the object, removed afterwards"),
    ("SCENE", "Scene", "The scene's cameras"),
]

#: How several selected objects are segmented (``CollectionOptions.mode``).
COLLECTION_ITEMS = [
    (
        "pre",
        "Together",
        "Category students learnt from all of them label each: the shapes teach each other, and an object "
        "unlike the rest is flagged",
    ),
    (
        "pre-tta",
        "Together, Refined",
        "As Together, then a category student refined on each object's own detections and blended in",
    ),
    (
        "ensemble",
        "Together, Each Its Own",
        "The category students averaged with a student learnt from scratch for each object",
    ),
    ("tta", "One by One", "Each object on its own, as when it is the only one selected"),
]

#: The axes the category students see each of several objects along (``CollectionOptions.frame``;
#: ``AUTO_FRAME``: the collection's default for its mode, ``default_frame``).
AUTO_FRAME = "auto"
FRAME_ITEMS = [
    (
        AUTO_FRAME,
        "Automatic",
        "Both for Together (the best on the validation shapes in the time allowed, quicker than three along one), "
        "As Modelled for the other ways",
    ),
    ("given", "As Modelled", "Each object's own axes, as its mesh has them: for objects modelled the same way up"),
    (
        "principal",
        "Principal Axes",
        "Each object along its principal axes: for objects that lie along different axes",
    ),
    (
        "both",
        "Both",
        "Half the category students each way, each on half the points (Several Objects: Together only)",
    ),
]

RENDER_ITEMS = [
    (
        "raster",
        "Fast",
        "Face ids and a flat-shaded picture from one z-buffer pass (material colours, no textures): the fastest",
    ),
    (
        "workbench",
        "Workbench",
        "Blender's Workbench render (anti-aliased, textures when the object's "
        "materials have them); face ids by ray casting: slower",
    ),
    ("cycles", "Cycles", "Cycles on the CPU (8 samples); face ids by ray casting: the slowest"),
]


class PartDistillSettings(bpy.types.PropertyGroup):
    preset: EnumProperty(
        name="Preset",
        items=PRESET_ITEMS,
        update=_apply_preset,
        description="Fill in the part names of a ShapeNetPart or PartNetE category",
    )  # type: ignore[valid-type]
    parts: StringProperty(name="Parts", description="Part names, separated by commas", default="seat, back, leg, arm")  # type: ignore[valid-type]
    method: EnumProperty(name="Method", items=METHOD_ITEMS)  # type: ignore[valid-type]
    teacher: EnumProperty(name="Teacher", items=TEACHER_ITEMS)  # type: ignore[valid-type]
    sam: BoolProperty(name="SAM Masks", description="Refine the teacher's boxes into masks with SAM")  # type: ignore[valid-type]
    sam_model: StringProperty(
        name="SAM Model", description="SAM's hub id or allowed name on the backend (empty: the default)"
    )  # type: ignore[valid-type]
    box_threshold: fraction_property(
        "Box Threshold", SegmentOptions.box_threshold, "Keep the teacher's boxes scoring at least this"
    )  # type: ignore[valid-type]
    text_threshold: fraction_property(
        "Text Threshold", SegmentOptions.text_threshold, "Grounding DINO: the least text-token score of a box's phrase"
    )  # type: ignore[valid-type]
    prompt_template: StringProperty(
        name="Prompt", default="{part}", description='Text per part, e.g. "the {part} of a {object}"'
    )  # type: ignore[valid-type]
    object_name: StringProperty(name="Object", description="What {object} in the prompt stands for, e.g. chair")  # type: ignore[valid-type]
    teacher_model: StringProperty(
        name="Model", description="Hub id or folder of the teacher's weights on the backend (empty: default)"
    )  # type: ignore[valid-type]
    category_model: StringProperty(
        name="Category Model",
        description="A category model made by `partdistill fit`, by the name the backend allows (or its folder "
        "on a local backend): label with it alone, no teacher",
    )  # type: ignore[valid-type]
    detections: file_property(
        "Detections", "Optional 2D detections JSON to use instead of the teacher (views must match the capture)"
    )  # type: ignore[valid-type]
    cameras: EnumProperty(name="Cameras", items=CAMERA_ITEMS)  # type: ignore[valid-type]
    render: EnumProperty(name="Render", items=RENDER_ITEMS)  # type: ignore[valid-type]
    collection_mode: EnumProperty(name="Several Objects", items=COLLECTION_ITEMS)  # type: ignore[valid-type]
    collection_frame: EnumProperty(name="Axes", items=FRAME_ITEMS)  # type: ignore[valid-type]
    n_views: IntProperty(name="Views", default=10, min=1, max=64)  # type: ignore[valid-type]
    resolution: IntProperty(name="Resolution", default=512, min=64, max=4096, subtype="PIXEL")  # type: ignore[valid-type]
    epochs: IntProperty(name="Epochs", default=100, min=1, max=100000)  # type: ignore[valid-type]


class PartDistillState(bpy.types.PropertyGroup):
    """Runtime state on the window manager: never saved, not touched by undo."""

    running: bpy.props.BoolProperty(default=False)  # type: ignore[valid-type]
    cancel_requested: bpy.props.BoolProperty(default=False)  # type: ignore[valid-type]
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    message: StringProperty(default="")  # type: ignore[valid-type]


CLASSES = (PartDistillSettings, PartDistillState)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Scene.partdistill = bpy.props.PointerProperty(type=PartDistillSettings)
    bpy.types.WindowManager.partdistill = bpy.props.PointerProperty(type=PartDistillState)


def unregister() -> None:
    del bpy.types.WindowManager.partdistill
    del bpy.types.Scene.partdistill
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
