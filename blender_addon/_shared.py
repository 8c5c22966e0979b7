"""The add-on's view of ``shared/`` (data types, errors, validation).

In the Blender extension zip the build copies ``shared/`` into the add-on as a sub-package; in a
source or editable install it is the sibling package ``partdistill.shared``. Looking the sub-package
up first (instead of catching ImportError) keeps a genuine import error inside ``shared`` visible.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec(f"{__package__}.shared") is not None:
    from .shared import limits  # type: ignore[attr-defined,no-redef]
    from .shared.capture import Capture, Mesh  # type: ignore[import-not-found,no-redef]
    from .shared.errors import ValidationError  # type: ignore[import-not-found,no-redef]
    from .shared.validation import check_part_names  # type: ignore[import-not-found,no-redef]
else:
    from ..shared import limits
    from ..shared.capture import Capture, Mesh
    from ..shared.errors import ValidationError
    from ..shared.validation import check_part_names

__all__ = ["Capture", "Mesh", "ValidationError", "check_part_names", "limits"]
