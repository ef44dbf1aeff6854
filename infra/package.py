"""Build the deployable stack: `chalice package` with infra/resources.json merged, then a slimmer artifact.

Chalice vendors every requirement, and PynamoDB depends on botocore, so the zip would carry
boto3/botocore/s3transfer/jmespath (about 16 MB zipped) that the Lambda Python runtime already
provides. They are removed from `deployment.zip` afterwards, and so is Babel's data for the ~1,100
locales the console does not speak (it speaks Russian and English: 33 MB of 35 MB unzipped);
everything else is left as Chalice built it. No AWS account is needed, only the package index
(Chalice downloads Lambda wheels).

Usage: `python -m infra.package [--stage dev] [--out build]` writes `<out>/sam.json` and
`<out>/deployment.zip` and prints the sizes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "infra" / "resources.json"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
"""Top-level packages the Lambda Python runtime ships (with their *.dist-info, *.data): never shipped twice."""
BABEL_LOCALE_DATA = "babel/locale-data/"
BABEL_KEPT = frozenset({"root", "en", "ru", "ru_RU"})
"""The console's languages (chalicelib/console/locales.py) and their parents: all Babel loads for them."""
SIZE_GOAL_BYTES = 15 * 1024 * 1024


@dataclass
class PackageSizes:
    zipped_before: int
    zipped: int
    unzipped: int
    stripped: dict[str, int] = field(default_factory=dict)
    """Top-level name -> uncompressed bytes removed."""


def _provided_by_runtime(path: str) -> str | None:
    """The name under which a file is left out: a package the runtime has, or a locale the console never uses."""
    top = path.split("/", 1)[0]
    name = top.split("-", 1)[0].lower() if top.endswith((".dist-info", ".data")) else top
    if name in RUNTIME_PROVIDED:
        return top
    if path.startswith(BABEL_LOCALE_DATA) and path.endswith(".dat"):
        locale = path[len(BABEL_LOCALE_DATA):-len(".dat")]
        return None if locale in BABEL_KEPT else "babel locale-data (unused locales)"
    return None


def strip_runtime_packages(artifact: Path) -> PackageSizes:
    """Rewrite `artifact` without the packages the runtime provides; returns the sizes."""
    before = artifact.stat().st_size
    slim = artifact.with_suffix(".slim.zip")
    stripped: dict[str, int] = {}
    unzipped = 0
    with zipfile.ZipFile(artifact) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            top = _provided_by_runtime(info.filename)
            if top is not None:
                stripped[top] = stripped.get(top, 0) + info.file_size
                continue
            unzipped += info.file_size
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    slim.replace(artifact)
    return PackageSizes(before, artifact.stat().st_size, unzipped, stripped)


def chalice_package(stage: str, out: Path) -> None:
    """`chalice package --merge-template infra/resources.json` into `out` (replaced)."""
    if out.exists():
        shutil.rmtree(out)
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "eu-central-1")  # Chalice insists on one; the template is region-neutral
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(  # noqa: S603 (a fixed command line: our chalice, our paths)
        [str(chalice), "package", "--stage", stage, "--merge-template", str(RESOURCES), str(out)],
        cwd=ROOT, env=env, check=True,
    )


def build(stage: str, out: Path) -> PackageSizes:
    chalice_package(stage, out)
    return strip_runtime_packages(out / "deployment.zip")


def report(sizes: PackageSizes) -> str:
    mib = 1024 * 1024
    lines = [
        f"deployment.zip: {sizes.zipped / mib:.2f} MiB zipped ({sizes.zipped:,} bytes), "
        f"{sizes.unzipped / mib:.2f} MiB unzipped; goal <= {SIZE_GOAL_BYTES / mib:.0f} MiB zipped: "
        + ("met" if sizes.zipped <= SIZE_GOAL_BYTES else "MISSED"),
        f"as Chalice built it: {sizes.zipped_before / mib:.2f} MiB zipped",
        "stripped (in the Lambda runtime): "
        + (", ".join(f"{name} {size / mib:.2f} MiB" for name, size in sorted(sizes.stripped.items())) or "nothing"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    sizes = build(args.stage, args.out)
    print(f"wrote {args.out / 'sam.json'} and {args.out / 'deployment.zip'}")
    print(report(sizes))
    return 0 if sizes.zipped <= SIZE_GOAL_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
