"""Deployment package size (issue 8): the artifact `make package` deploys, zipped and unzipped.

Runs the same build as `make package` (`infra.package`: `chalice package` with the merged
template, then boto3/botocore/s3transfer/jmespath removed because the Lambda runtime ships them)
into a temporary directory, and prints the zipped size as Chalice built it, the zipped and unzipped
size of what is deployed, the goal (<= 15 MiB zipped), and the largest top-level entries left.

Run: .venv/bin/python -m bench.package_size [--stage dev] [--top 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from infra import package


def largest(artifact: Path, top: int) -> list[tuple[str, int, int]]:
    """The `top` largest top-level entries: (name, zipped bytes, unzipped bytes)."""
    zipped: Counter[str] = Counter()
    unzipped: Counter[str] = Counter()
    with zipfile.ZipFile(artifact) as archive:
        for info in archive.infolist():
            name = info.filename.split("/", 1)[0]
            zipped[name] += info.compress_size
            unzipped[name] += info.file_size
    return [(name, size, unzipped[name]) for name, size in zipped.most_common(top)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build"
        sizes = package.build(args.stage, out)
        print(package.report(sizes))
        print("largest entries left (zipped / unzipped MiB):")
        for name, zipped, unzipped in largest(out / "deployment.zip", args.top):
            print(f"  {name:<45} {zipped / 2**20:6.2f} {unzipped / 2**20:7.2f}")
    return 0 if sizes.zipped <= package.SIZE_GOAL_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
