"""Builds the Blender extension zip (Blender >= 4.2): the add-on, a copy of ``shared/`` inside it as
a sub-package, and the wheels of its two dependencies (pyzmq, msgpack) for the platforms Blender
ships on, listed in the manifest so Blender installs them. numpy comes with Blender.

    .venv/bin/python scripts/build_extension.py [--out dist] [--no-wheels]

Then in Blender: Edit > Preferences > Get Extensions > Install from Disk... and pick the zip.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Blender 4.2-5.0 bundle CPython 3.11.
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_x86_64", "macosx_11_0_arm64", "macosx_11_0_x86_64", "win_amd64")
PACKAGES = ("pyzmq", "msgpack")
EXCLUDE = {"headless.py"}  # bpy-as-a-module entry point for the CLI, not part of the add-on


def build(out: Path, wheels: bool = True) -> Path:
    manifest = (ROOT / "blender_addon" / "blender_manifest.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', manifest, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "partdistill"
        stage.mkdir()
        for f in sorted((ROOT / "blender_addon").glob("*.py")):
            if f.name not in EXCLUDE:
                shutil.copy2(f, stage / f.name)
        (stage / "shared").mkdir()
        for f in sorted((ROOT / "shared").glob("*.py")):
            shutil.copy2(f, stage / "shared" / f.name)
        wheel_paths: list[str] = []
        if wheels:
            (stage / "wheels").mkdir()
            for platform in PLATFORMS:
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
                     "--python-version", PYTHON_VERSION, "--platform", platform, "-d", str(stage / "wheels"),
                     *PACKAGES],
                    check=True,
                )  # fmt: skip
            wheel_paths = sorted(f"./wheels/{w.name}" for w in (stage / "wheels").glob("*.whl"))
        listed = "wheels = [\n" + "".join(f'  "{w}",\n' for w in wheel_paths) + "]"
        (stage / "blender_manifest.toml").write_text(re.sub(r"^wheels = \[\]", listed, manifest, flags=re.M))
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"partdistill-{version}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(stage.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    z.write(f, f.relative_to(stage).as_posix())
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "dist")
    p.add_argument("--no-wheels", action="store_true", help="leave the dependency wheels out (offline builds)")
    args = p.parse_args()
    print(f"wrote {build(args.out, wheels=not args.no_wheels)}")


if __name__ == "__main__":
    main()
