"""Per-image lock files: the part of requirements.lock each Python service's image installs, hashes included.

    python deploy/tools/image_locks.py --pip-compile .cache/tools-venv/bin/pip-compile     # `make lock` runs this

In each deploy/docker/<service>/ folder:
- requirements.txt (the packages the service imports, pinned) -> requirements.lock: resolved by pip-compile with
  requirements.lock as constraints, so every version and hash is the audited one (a unit test checks it);
- any other *.txt (packages taken without their declared dependencies, e.g. the classifier's) -> <name>.lock: the
  root lock's entries of those packages, copied as they are.
The shared Dockerfile installs them with `pip install --require-hashes`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT_LOCK = REPO / "requirements.lock"
DOCKER = REPO / "deploy" / "docker"
PIP_COMPILE_OPTIONS = ("--quiet", "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-header", "--no-emit-find-links")
"""The options `make lock` gives pip-compile for the root lock: the image locks read the same way."""
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)((?: \\\n[ \t]+--hash=\S+)+)", re.MULTILINE)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(lock_text: str) -> dict[str, str]:
    """{normalised name: its `name==version --hash=...` entry} of a pip-compile lock (comments left out)."""
    return {normalise(match[1]): match[0] for match in ENTRY.finditer(lock_text)}


def pins(requirements: Path) -> list[str]:
    """The normalised names pinned in a requirements file (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return [normalise(line.split("==", 1)[0]) for line in lines if line]


def copied_entries(requirements: Path, root: dict[str, str]) -> str:
    missing = [name for name in pins(requirements) if name not in root]
    if missing:
        raise SystemExit(f"{requirements}: {missing} not in {ROOT_LOCK.name}: run `make lock` after adding them to requirements.txt")
    header = f"# The entries of {', '.join(pins(requirements))} in requirements.lock, from {requirements.name} (deploy/tools/image_locks.py).\n"
    return header + "".join(root[name] + "\n" for name in pins(requirements))


def write_locks(pip_compile: str) -> list[Path]:
    root = entries(ROOT_LOCK.read_text())
    written = []
    for requirements in sorted(DOCKER.glob("*/*.txt")):
        lock = requirements.with_suffix(".lock")
        if requirements.name == "requirements.txt":
            subprocess.run(
                [pip_compile, *PIP_COMPILE_OPTIONS, "--constraint", str(ROOT_LOCK.relative_to(REPO)),
                 "--output-file", str(lock.relative_to(REPO)), str(requirements.relative_to(REPO))],
                cwd=REPO, check=True,
            )
        else:
            lock.write_text(copied_entries(requirements, root))
        written.append(lock)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pip-compile", default="pip-compile", help="the pip-compile command (default: from PATH)")
    for lock in write_locks(parser.parse_args().pip_compile):
        print(lock.relative_to(REPO))


if __name__ == "__main__":
    main()
