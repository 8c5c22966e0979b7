"""The add-on's view of ``shared/`` (data types, errors, validation, bundle, palette, client).

In the Blender extension zip the build copies ``shared/`` into the add-on as a sub-package; in a
source or editable install it is the sibling package ``partdistill.shared``. Looking the sub-package
up first (instead of catching ImportError) keeps a genuine import error inside ``shared`` visible.
"""

from __future__ import annotations

import importlib
import importlib.util

_BASE = (
    f"{__package__}.shared"
    if importlib.util.find_spec(f"{__package__}.shared") is not None
    else f"{__package__.rpartition('.')[0]}.shared"
)


def _module(name: str):
    return importlib.import_module(f"{_BASE}.{name}")


limits = _module("limits")
load_bundle = _module("bundle").load_bundle
save_bundle = _module("bundle").save_bundle
project_points = _module("camera").project_points
Capture = _module("capture").Capture
Mesh = _module("capture").Mesh
ValidationError = _module("errors").ValidationError
palette = _module("palette").palette
check_part_names = _module("validation").check_part_names
parse_part_names = _module("validation").parse_part_names
SegmentOptions = _module("options").SegmentOptions
SegmentationResult = _module("result").SegmentationResult
Detections = _module("detections").Detections
_client = _module("client")
BackendClient, BackendError, BackendTimeout = (
    _client.BackendClient,
    _client.BackendError,
    _client.BackendTimeout,
)
DEFAULT_ADDRESS = _client.DEFAULT_ADDRESS

__all__ = [
    "DEFAULT_ADDRESS",
    "BackendClient",
    "BackendError",
    "BackendTimeout",
    "Capture",
    "Detections",
    "Mesh",
    "SegmentOptions",
    "SegmentationResult",
    "ValidationError",
    "check_part_names",
    "limits",
    "load_bundle",
    "palette",
    "parse_part_names",
    "project_points",
    "save_bundle",
]
