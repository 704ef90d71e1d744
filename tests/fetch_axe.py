"""Fetch axe-core (the accessibility rules engine the page tests inject) from the npm registry:
one pinned version, checked against the registry's SHA-512 integrity, kept under ``.tools/``.

    python -m tests.fetch_axe DEST        (what ``make`` runs; nothing to do if DEST exists)
"""

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "4.14.1"  # MPL-2.0
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="


def fetch(dest: Path) -> None:
    if dest.exists():
        return
    with urllib.request.urlopen(URL, timeout=60) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"axe-core {VERSION}: integrity mismatch ({digest})")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        script = member.read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(script)
    print(f"axe-core {VERSION} -> {dest}")


if __name__ == "__main__":
    fetch(Path(sys.argv[1]))
