"""Builds the Blender extension zip (Blender >= 4.2):

- the add-on package (``blender_addon/`` without ``headless/``, the bpy-as-a-module entry point of the
  CLI and the benchmark);
- ``wheels/partdistill_shared-<version>-py3-none-any.whl``: the ``partdistill.shared`` contract that
  the add-on imports absolutely (``from partdistill.shared.capture import Capture``). A pure-Python
  wheel built here by hand with zipfile (no network, byte-for-byte reproducible), holding
  ``partdistill/shared/*.py`` and no ``partdistill/__init__.py``: ``partdistill`` stays a namespace
  package, as in a source install;
- the wheels of shared's two binary dependencies (pyzmq, msgpack) for the platforms Blender ships
  on, downloaded from PyPI. numpy comes with Blender.

Every wheel is listed in the manifest's ``wheels``, so Blender extracts them into its extensions'
site-packages when it installs the zip.

    .venv/bin/python scripts/build_extension.py [--out dist] [--no-wheels]

``--no-wheels`` leaves out only the PyPI downloads (offline builds); the shared wheel is always in.
Then in Blender: Edit > Preferences > Get Extensions > Install from Disk... and pick the zip.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Blender 4.2-5.0 bundle CPython 3.11.
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_x86_64", "macosx_11_0_arm64", "macosx_11_0_x86_64", "win_amd64")
PACKAGES = ("pyzmq", "msgpack")
EXCLUDE = {"headless"}  # bpy-as-a-module entry point for the CLI, not part of the add-on
SHARED_DIST = "partdistill_shared"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same wheel


def _addon_files() -> list[Path]:
    addon = ROOT / "blender_addon"
    return [
        f
        for f in sorted(addon.rglob("*.py"))
        if f.relative_to(addon).parts[0] not in EXCLUDE and "__pycache__" not in f.parts
    ]


def build_shared_wheel(out_dir: Path) -> Path:
    """Write ``partdistill_shared-<version>-py3-none-any.whl`` (``shared/`` as ``partdistill/shared``)
    into ``out_dir``; version and dependencies from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = project["version"]
    requires = [re.match(r"[A-Za-z0-9._-]+", d).group(0) for d in project["dependencies"]]
    info = f"{SHARED_DIST}-{version}.dist-info"
    shared = ROOT / "shared"
    files = [
        (f"partdistill/shared/{f.relative_to(shared).as_posix()}", f.read_bytes())
        for f in sorted(shared.rglob("*.py"))
        if "__pycache__" not in f.parts
    ]
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {SHARED_DIST.replace('_', '-')}\n"
        f"Version: {version}\n"
        "Summary: partdistill's add-on/backend contract (partdistill.shared), bundled with the Blender extension\n"
        f"License: {project.get('license', 'UNKNOWN')}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    wheel = "Wheel-Version: 1.0\nGenerator: partdistill build_extension\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files += [(f"{info}/METADATA", metadata.encode()), (f"{info}/WHEEL", wheel.encode())]
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files.append((f"{info}/RECORD", record.getvalue().encode()))
    target = out_dir / f"{SHARED_DIST}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return target


def build(out: Path, wheels: bool = True) -> Path:
    addon = ROOT / "blender_addon"
    manifest = (addon / "blender_manifest.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', manifest, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "partdistill"
        stage.mkdir()
        for f in _addon_files():
            dest = stage / f.relative_to(addon)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        (stage / "wheels").mkdir()
        build_shared_wheel(stage / "wheels")
        if wheels:
            for platform in PLATFORMS:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--only-binary=:all:",
                        "--no-deps",
                        "--python-version",
                        PYTHON_VERSION,
                        "--platform",
                        platform,
                        "-d",
                        str(stage / "wheels"),
                        *PACKAGES,
                    ],
                    check=True,
                )
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
    p.add_argument(
        "--no-wheels", action="store_true", help="leave the PyPI wheels (pyzmq, msgpack) out (offline builds)"
    )
    args = p.parse_args()
    print(f"wrote {build(args.out, wheels=not args.no_wheels)}")


if __name__ == "__main__":
    main()
