"""Options of a segmentation job; they travel in the message header, so only plain values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import ValidationError, shown

#: "distill": the student (the product's method); the others are baselines without a student.
METHODS = ("distill", "vote", "vote-fill", "superpoint")
VOTING_METHODS = ("vote", "vote-fill", "superpoint")
BACKWARD_RULES = ("part-relative", "paper")
#: How the student's prediction is carried onto the mesh: "none" (the student's argmax, as the paper),
#: "superpoints" (pooled over superpoints) or "graph-cut" (pooled, then a Potts graph cut over faces).
REFINES = ("none", "superpoints", "graph-cut")
#: Where torch runs: "auto" (CUDA, else Apple's Metal where it works, else the CPU) or one of them.
DEVICES = ("auto", "cpu", "cuda", "mps")
#: What the teacher looks at (the paper's supplementary C.3): the mesh as captured (its own colours), the mesh in
#: grey, dense coloured points or sparse grey points sampled on it (labels come back to the faces).
RENDER_TYPES = ("color-mesh", "gray-mesh", "dense-points", "sparse-points")
#: How the teacher's model computes: "fp32" (exact), "bf16" / "fp16" (autocast; fp16 on GPUs only) or
#: "int8" (its linear layers quantised dynamically; CPU only). Anything but fp32 changes the detections.
TEACHER_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
#: The size a teacher sees a view at: "processor" (its processor's default resize) or "render" (the
#: render's own size, for a teacher whose model takes any size).
TEACHER_INPUTS = ("processor", "render")
#: The surface points a student may be given (``SegmentOptions.n_points``, ``CollectionOptions.points``).
MIN_POINTS, MAX_POINTS = 64, 1_000_000


@dataclass
class SegmentOptions:
    """How to segment.

    method: "distill" (teacher -> knowledge units -> 3D student), or a voting baseline without a student:
    "vote" (thresholded per-face vote, unlabelled faces stay -1), "vote-fill" (score-weighted per-face
    argmax, unvoted faces filled along the surface), "superpoint" (the same votes pooled over geometric
    superpoints, as PartSLIP does).
    teacher: None (use given detections) or a teacher name ("grounding_dino", "owlv2", "clipseg").
    teacher_model: hub id or local folder of the teacher's weights ("" = the teacher's default).
    prompt_template: the text per part, e.g. "{part}" or "the {part} of a {object}" (object_name fills it).
    sam_model: None, or refine every box into a mask with SAM ("" = facebook/sam-vit-base, or hub id/folder).
    box_threshold / text_threshold: teacher detection thresholds.
    whole_object_cover: boxes covering at least this fraction of the object (its bounding box and its
    pixels) are dropped, as PartSLIP does; a value above 1 keeps every box.
    text_encoder: hub id or folder of a CLIP text encoder for the part names ("" = hashed names).
    backward_window / backward_tolerance: backward distillation starts when the moving average of the
    loss over ``backward_window`` epochs changes by less than ``backward_tolerance`` (relative).
    backward_rule: "part-relative" (ours: the trigger above, units re-ranked within their part by
    precision) or "paper" (PartDistill as published: absolute 0.01 trigger, confidence x IoU).
    refine: how the student's prediction is carried onto the mesh (``REFINES``).
    backbone: "" or the folder of a pretrained student encoder (``partdistill bench pretrain``),
    frozen unless ``finetune_backbone`` (the paper freezes its pretrained Point-M2AE).
    render_type: what the views show (``RENDER_TYPES``; mesh captures only): "color-mesh" the views
    as captured, "gray-mesh" repainted grey, "dense-points" / "sparse-points" 50,000 coloured / 2,048
    grey points sampled on the surface, drawn as surfels from the same cameras.
    category_model: "" or a category model made by ``partdistill fit`` (its folder; on a shared
    server, a name the server allows): the shape is then labelled by that pre-aligned student alone,
    with no teacher and no detections (the paper's Pre).
    teacher_batch: views per forward pass of the teacher (0: by the memory free on the device: one on a
    CPU, where batching saves no time and costs memory).
    teacher_precision: one of ``TEACHER_PRECISIONS``; teacher_input: one of ``TEACHER_INPUTS``.
    n_points: points sampled on the surface for lifting and the student.
    epochs: maximum training epochs of the student; backward: run backward distillation.
    device: one of ``DEVICES``: "auto" (CUDA, else Apple's Metal, else the CPU), "cpu", "cuda", "mps".
    seed: random seed (sampling, initialisation) for reproducible results.
    """

    method: str = "distill"
    teacher: str | None = None
    teacher_model: str = ""
    prompt_template: str = "{part}"
    object_name: str = ""
    sam_model: str | None = None
    whole_object_cover: float = 0.85
    text_encoder: str = ""
    backward_window: int = 5
    backward_tolerance: float = 0.005
    backward_rule: str = "part-relative"
    refine: str = "graph-cut"
    render_type: str = "color-mesh"
    backbone: str = ""
    finetune_backbone: bool = False
    category_model: str = ""
    box_threshold: float = 0.25
    text_threshold: float = 0.2
    teacher_batch: int = 0
    teacher_precision: str = "fp32"
    teacher_input: str = "processor"
    n_points: int = 4096
    epochs: int = 100
    backward: bool = True
    device: str = "auto"
    seed: int = 0

    def validate(self) -> SegmentOptions:
        if self.method not in METHODS:
            raise ValidationError("options.method", f"must be one of {METHODS}, got {shown(self.method)}")
        if self.teacher is not None and not isinstance(self.teacher, str):
            raise ValidationError("options.teacher", "must be a teacher name or null")
        for name in ("teacher_model", "prompt_template", "object_name", "text_encoder", "category_model", "backbone"):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > 1000:
                raise ValidationError(f"options.{name}", "must be a string of at most 1000 characters")
        if self.sam_model is not None and not isinstance(self.sam_model, str):
            raise ValidationError("options.sam_model", "must be a hub id, a folder, '' (default SAM) or null")
        if "{part}" not in self.prompt_template:
            raise ValidationError("options.prompt_template", "must contain {part}")
        for name, lo, hi in (("whole_object_cover", 0.0, 2.0), ("backward_tolerance", 0.0, 1.0)):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= float(v) <= hi:
                raise ValidationError(f"options.{name}", f"must be a number in [{lo}, {hi}], got {shown(v)}")
        for name in ("box_threshold", "text_threshold"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValidationError(f"options.{name}", f"must be a number in [0, 1], got {shown(v)}")
        ints = (
            ("n_points", MIN_POINTS, MAX_POINTS),
            ("epochs", 1, 100_000),
            ("seed", 0, 2**31 - 1),
            ("backward_window", 1, 1000),
            ("teacher_batch", 0, 64),
        )
        for name, lo, hi in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValidationError(f"options.{name}", f"must be an integer in [{lo}, {hi}], got {shown(v)}")
        for name in ("backward", "finetune_backbone"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"options.{name}", "must be true or false")
        if self.backward_rule not in BACKWARD_RULES:
            rules = ", ".join(BACKWARD_RULES)
            raise ValidationError("options.backward_rule", f"must be one of {rules}, got {shown(self.backward_rule)}")
        if self.refine not in REFINES:
            raise ValidationError("options.refine", f"must be one of {', '.join(REFINES)}, got {shown(self.refine)}")
        if self.render_type not in RENDER_TYPES:
            kinds = ", ".join(RENDER_TYPES)
            raise ValidationError("options.render_type", f"must be one of {kinds}, got {shown(self.render_type)}")
        if self.teacher_precision not in TEACHER_PRECISIONS:
            kinds = ", ".join(TEACHER_PRECISIONS)
            raise ValidationError(
                "options.teacher_precision", f"must be one of {kinds}, got {shown(self.teacher_precision)}"
            )
        if self.teacher_input not in TEACHER_INPUTS:
            kinds = ", ".join(TEACHER_INPUTS)
            raise ValidationError("options.teacher_input", f"must be one of {kinds}, got {shown(self.teacher_input)}")
        if self.device not in DEVICES:
            raise ValidationError("options.device", f"must be one of {', '.join(DEVICES)}, got {shown(self.device)}")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["category_model"]:
            del d["category_model"]  # absent when unused: older servers and cached run keys stay valid
        if d["render_type"] == "color-mesh":
            del d["render_type"]
        if not d["backbone"]:
            del d["backbone"], d["finetune_backbone"]
        for name, default in (("teacher_batch", 0), ("teacher_precision", "fp32"), ("teacher_input", "processor")):
            if d[name] == default:
                del d[name]  # absent at their defaults: a run key names only the settings it changed
        return d

    @classmethod
    def from_dict(cls, d: object) -> SegmentOptions:
        if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
            raise ValidationError("options", "must be a map with string keys")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValidationError("options", f"unknown option(s) {unknown}")
        return cls(**d).validate()


#: How a collection is labelled (see ``CollectionOptions``); the default "pre" was chosen on the
#: real-mesh validation split with ``CATEGORY_STUDENTS``.
COLLECTION_MODES = ("pre", "pre-tta", "ensemble", "tta")
#: Epochs of each shape's fine-tuning from the category student (test-time alignment from scratch
#: takes ``SegmentOptions.epochs``). Chosen on the real-mesh validation split (``bench real
#: --collection``: 15, 30 and 50 epochs, 30 with contradicting detections down-weighted, 50 blended).
FINETUNE_EPOCHS = 50
#: A face where the shape's own evidence and the category students disagree keeps this share of its
#: confidence: the drop with the lowest calibration error on the real-mesh validation split (none. In
#: mode "pre" such faces already carry lower confidence, 0.63 on average against 0.77 where they
#: agree, and are right about as often, 60 % and 77 %: every drop made the error worse, 0.038 at
#: none and 0.065 at 0.75 with seed 0. In mode "pre-tta", with the blend).
DISAGREE_CONFIDENCE = 1.0
#: The weight of the category student's probabilities in the labels of a fine-tuned shape: chosen on
#: the real-mesh validation split (53.7 blended half and half, 53.0 fine-tuned alone).
BLEND = 0.5
#: Category students fitted and averaged: chosen on the real-mesh validation split (``bench real
#: --collection``): three labelling alone scored 55.5, three fine-tuned and blended 53.4, one
#: fine-tuned and blended 53.7, one alone 52.6; five of 60 epochs each (the same fitting time) 54.1.
CATEGORY_STUDENTS = 3
#: The most category students one collection fits (and one checkpoint holds).
MAX_CATEGORY_STUDENTS = 16
#: How far a category fit stretches each shape per axis (``CollectionOptions.stretch``): not at all,
#: as in the paper. Chosen on the real-mesh validation split (``bench real --collection``, three
#: category students): 55.5 as they are, 54.3 stretched up to 1.5, 53.6 up to 1.25.
STRETCH = 1.0
#: How a category fit sees each shape (``CollectionOptions.frame``): "given", as the file has it
#: (the paper), "principal", along the shape's principal axes (``pipeline.shape.principal_frame``),
#: or "both", the category students taking turns (``member_frames``).
#: "both" is the default of mode "pre" (``default_frame``), with four students of 2048 points each
#: (half the default 4096, ``default_points``), which fit in about two thirds of the time of three
#: of 4096. On the real-mesh validation split (``bench real --collection``, seeds 0 and 1) they scored
#: 55.8 and 55.5, against 53.4 and 54.5 for three of 4096 points in the files' frame (the default
#: before both frames), 55.3 and 56.6 for six of 2048 points over both frames, 54.2 and 56.1 for six
#: of 4096 points, and 54.5 and 55.8 for six of 2048 points in the files' frame. Six of 2048 points
#: took 1.7 to 2.1 times the previous release's ``batch --fit`` on a batch of 8 (measured side by
#: side), past the time aim of 1.5; four took 1.1 to 1.3 times.
#: Principal axes alone (three students) scored 54.8 and 55.3, with three categories 2 to 7 points
#: behind. Other ways to fit both frames in the time of three: six of 50 epochs 53.7 and 52.5, four of
#: 75 epochs 54.8 and 54.7, three full students, the third along the principal axes, 53.0 and 55.5.
#: The other modes fine-tune one student on each shape, so their students share the files' frame.
FRAMES = ("given", "principal", "both")
FRAME = "both"
#: Category students fitted with frame "both" when none are asked for: four, two along each frame.
BOTH_FRAMES_STUDENTS = 4
#: The share of a shape's points (``SegmentOptions.n_points``) each category student of frame "both"
#: is fitted on and labels with when the user does not say: half (a fit's time grows with its points:
#: 1.1 s against 2.1 s for 10 epochs over 4 shapes of 2048 and 4096 points on a 2-core CPU).
BOTH_FRAMES_POINT_SHARE = 0.5


def default_frame(mode: str) -> str:
    """The frame a collection of ``mode`` (one of ``COLLECTION_MODES``) is fitted along when the user
    does not say (``CollectionOptions.frame`` None): ``FRAME`` for mode "pre", the files' own
    otherwise."""
    return FRAME if mode == "pre" else "given"


def default_students(frame: str) -> int:
    """How many category students are fitted along ``frame`` (one of ``FRAMES``) when the user does
    not say (``CollectionOptions.students`` None: ``partdistill batch``, Blender, a server request)."""
    return BOTH_FRAMES_STUDENTS if frame == "both" else CATEGORY_STUDENTS


def default_points(frame: str, n_points: int) -> int:
    """The points of each shape the category students along ``frame`` are fitted on when the user does
    not say (``CollectionOptions.points`` None), for shapes of ``n_points`` (``SegmentOptions``):
    ``BOTH_FRAMES_POINT_SHARE`` of them for "both" (2048 of the default 4096), all of them otherwise."""
    if frame != "both":
        return n_points
    return max(MIN_POINTS, round(n_points * BOTH_FRAMES_POINT_SHARE))


def member_frames(frame: str, students: int) -> tuple[str, ...]:
    """The frame each of ``students`` category students sees its shapes along, for ``frame`` one of
    ``FRAMES``: "both" gives the files' frame to the first, third, ... and the principal axes to the
    second, fourth, ..., so an even number splits evenly."""
    if frame != "both":
        return (frame,) * students
    return tuple(FRAMES[j % 2] for j in range(students))


@dataclass
class CollectionOptions:
    """How a collection is labelled. mode: one of ``COLLECTION_MODES``. finetune_epochs: epochs of
    each shape's fine-tuning ("pre-tta"; "ensemble" trains each shape's own student from scratch for
    ``SegmentOptions.epochs``). downweight: before fine-tuning, lower the weight of each
    knowledge unit by how much the category student contradicts it (backward distillation's
    re-scoring, with the category student as the snapshot). blend: the weight of the category
    student's probabilities averaged into the fine-tuned (or, "ensemble", the shape's own) student's
    (0: that student alone; "pre-tta" and "ensemble").
    disagree_confidence: the share of its confidence a face keeps where the shape's own evidence
    and the category students disagree (mode "pre": its detections' superpoint vote names another
    part than its label; the other modes: its label differs from the category students').
    students: how many category students are fitted (seeds ``seed``, ``seed + 1``, ...; each as
    long as one) and averaged; "pre-tta" fine-tunes the first. None (or left out of a request):
    ``default_students(frame)``, the number every front end fits.
    stretch: each step of a category fit sees its shape stretched along each axis by a random
    factor in [1 / stretch, stretch] (1: as it is, the paper's Pre). frame: one of ``FRAMES``, the
    axes the category students see each shape along ("both": ``member_frames``, mode "pre" only)."""

    mode: str = "pre"
    finetune_epochs: int = FINETUNE_EPOCHS
    downweight: bool = False
    blend: float = BLEND
    disagree_confidence: float = DISAGREE_CONFIDENCE
    students: int | None = None
    stretch: float = STRETCH
    frame: str | None = None
    points: int | None = None

    def __post_init__(self) -> None:
        # settled here, not when fitting: what a request carries and a checkpoint records is what was
        # fitted (a ``dataclasses.replace`` of the mode or the frame keeps them)
        if self.frame is None:
            self.frame = default_frame(self.mode)
        if self.students is None:
            self.students = default_students(self.frame)

    def fit_points(self, options: SegmentOptions) -> int:
        """The points of each shape the collection's students are fitted on, for shapes of ``options``."""
        return default_points(self.frame, options.n_points) if self.points is None else self.points

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> CollectionOptions:
        if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
            raise ValidationError("collection", "must be a map with string keys")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValidationError("collection", f"unknown option(s) {unknown}")
        return cls(**d).validate()

    def validate(self) -> CollectionOptions:
        if self.mode not in COLLECTION_MODES:
            modes = ", ".join(COLLECTION_MODES)
            raise ValidationError("collection.mode", f"must be one of {modes}, got {shown(self.mode)}")
        if not isinstance(self.finetune_epochs, int) or not 1 <= self.finetune_epochs <= 100_000:
            raise ValidationError(
                "collection.finetune_epochs", f"must be an integer in [1, 100000], got {self.finetune_epochs!r}"
            )
        top = MAX_CATEGORY_STUDENTS
        if not isinstance(self.students, int) or isinstance(self.students, bool) or not 1 <= self.students <= top:
            raise ValidationError(
                "collection.students", f"must be an integer in [1, {top}], got {shown(self.students)}"
            )
        if not isinstance(self.stretch, int | float) or isinstance(self.stretch, bool) or not 1 <= self.stretch <= 2:
            raise ValidationError("collection.stretch", f"must be a number in [1, 2], got {shown(self.stretch)}")
        if self.frame not in FRAMES:
            raise ValidationError("collection.frame", f"must be one of {', '.join(FRAMES)}, got {shown(self.frame)}")
        p = self.points
        if p is not None and (not isinstance(p, int) or isinstance(p, bool) or not MIN_POINTS <= p <= MAX_POINTS):
            raise ValidationError(
                "collection.points", f"must be an integer in [{MIN_POINTS}, {MAX_POINTS}], got {shown(p)}"
            )
        if self.frame == "both" and self.mode != "pre":
            # fine-tuning starts from one student and blends the rest in: they must share a frame
            raise ValidationError("collection.frame", f"both is for mode pre, not {self.mode}")
        for name in ("disagree_confidence", "blend"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValidationError(f"collection.{name}", f"must be a number in [0, 1], got {shown(v)}")
        return self


def collection_ruled_out(options: SegmentOptions) -> str | None:
    """The option that rules out fitting a category student over a collection (``pre-tta``, ``pre``:
    a student distilled on the views as captured), as ``"option value"``; None when nothing does."""
    for given, what in (
        (options.method != "distill", f"method {options.method}"),
        (options.render_type != "color-mesh", f"render type {options.render_type}"),
        (bool(options.category_model), "a category model"),
    ):
        if given:
            return what
    return None
