"""Vendor the web UI's browser assets from the npm registry: ``python scripts/vendor_assets.py``.

The UI works offline and uses no CDN: the few files it needs are copied, once, into
``treadle/server/static/vendor/<package>/`` and committed. Each package is pinned to a
version and checked against the registry's sha512 integrity before anything is written;
only the files listed are extracted. ``--check`` verifies the committed files instead
(their sha256 against ``MANIFEST.json``), without the network.

To upgrade a package: change its version here, run the script, review the diff.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).resolve().parents[1] / "treadle" / "server" / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"

#: package -> (version, files inside the package to keep)
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "htmx.org": ("2.0.4", ("dist/htmx.min.js", "LICENSE")),
    "codemirror": (
        "5.65.21",
        (
            "lib/codemirror.js",
            "lib/codemirror.css",
            "mode/python/python.js",
            "mode/sql/sql.js",
            "mode/yaml/yaml.js",
            "LICENSE",
        ),
    ),
    # the API's interactive docs (/api/v1/docs), which FastAPI would load from a CDN
    "swagger-ui-dist": (
        "5.35.0",
        ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"),
    ),
}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


def tarball(package: str, version: str) -> bytes:
    """The package's tarball, checked against the registry's sha512 integrity."""
    meta = json.loads(fetch(f"{REGISTRY}/{package}/{version}"))
    data = fetch(meta["dist"]["tarball"])
    algorithm, expected = meta["dist"]["integrity"].split("-", 1)
    if algorithm != "sha512":
        raise SystemExit(f"{package}@{version}: unexpected integrity {algorithm}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{package}@{version}: the tarball does not match its integrity")
    return data


def extract(package: str, version: str, files: tuple[str, ...]) -> dict[str, str]:
    """Write the listed files; return their sha256 by path (relative to VENDOR)."""
    written: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball(package, version)), mode="r:gz") as archive:
        for name in files:
            member = archive.getmember(f"package/{name}")
            source = archive.extractfile(member)
            if source is None:
                raise SystemExit(f"{package}@{version}: {name} is not a file")
            content = source.read()
            target = VENDOR / package / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            written[f"{package}/{name}"] = hashlib.sha256(content).hexdigest()
    return written


def vendor() -> None:
    manifest: dict[str, object] = {"packages": {}, "files": {}}
    for package, (version, files) in PACKAGES.items():
        print(f"{package}@{version}", file=sys.stderr)
        manifest["packages"][package] = version  # type: ignore[index]
        manifest["files"].update(extract(package, version, files))  # type: ignore[union-attr]
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def check() -> int:
    manifest = json.loads(MANIFEST.read_text())
    bad = [
        path
        for path, digest in manifest["files"].items()
        if not (VENDOR / path).is_file()
        or hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() != digest
    ]
    for path in bad:
        print(f"changed or missing: {path}", file=sys.stderr)
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files")
    args = parser.parse_args()
    if args.check:
        raise SystemExit(check())
    vendor()


if __name__ == "__main__":
    main()
