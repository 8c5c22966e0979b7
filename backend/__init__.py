"""The engine: teachers, pipeline, students, alignment, the server, inputs/outputs and the CLI.

The pipeline's stages are detect, lift, distill, label (and vote, the baselines). Never imports bpy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("partdistill")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    # ``from partdistill.backend import segment`` without importing torch for every submodule import
    if name == "segment":
        from .tta import segment

        return segment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
