"""``partdistill``: segment meshes, pre-align category students, capture, serve the backend, make keys.

partdistill segment INPUT --parts seat,back,leg --out DIR [--detections FILE.json]
                    [--teacher grounding_dino] [--teacher-model ID|DIR] [--method distill|vote]
                    [--backend tcp://host:port] [--views 10] [--resolution 512]
partdistill fit INPUTS... --parts ... --out MODEL_DIR
partdistill predict INPUT --model MODEL_DIR --out DIR
partdistill capture MESH --out BUNDLE.npz [--views 10] [--resolution 512]
partdistill serve [--bind tcp://127.0.0.1:5555] [--curve-keys DIR]
partdistill keys DIR

Other installed packages add commands through the ``partdistill.commands`` entry-point group (the
evaluation tools add ``partdistill bench``): the product never imports them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from partdistill.shared.errors import ValidationError

from . import batch, capture_bundle, fit, keys, predict, segment, serve
from .interrupt import interrupts_outside_imports

COMMANDS = (segment, batch, fit, predict, capture_bundle, serve, keys)
PLUGIN_GROUP = "partdistill.commands"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with interrupts_outside_imports():
            return args.func(args)
    except ValidationError as e:
        print(f"partdistill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("partdistill: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from partdistill.shared.client import BackendError, BackendTimeout

        from ..teachers.loading import TeacherUnavailableError

        if isinstance(e, TeacherUnavailableError | BackendError | BackendTimeout):
            print(f"partdistill: error: {e}{where_to_set(getattr(e, 'field', ''))}", file=sys.stderr)
            return 2
        raise


#: Where a user of the CLI sets each field a backend or the engine may name in an error.
CLI_FLAGS = {
    "options.teacher_model": "--teacher-model NAME_OR_FOLDER, or --detections FILE.json",
    "options.sam_model": "--sam-model NAME_OR_FOLDER",
    "options.text_encoder": "--text-encoder NAME_OR_FOLDER",
    "options.backbone": "--backbone FOLDER",
    "options.category_model": "--category-model FOLDER",
    "options.teacher": "--teacher NAME, or --detections FILE.json",
}


def where_to_set(field: str) -> str:
    """`` (set it with ...)`` for a field the CLI has an option for, else ""."""
    return f" (set it with {CLI_FLAGS[field]})" if field in CLI_FLAGS else ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partdistill", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        ep.load()(sub)
    return p
