"""`python -m classpulse_reliability.audit`: known vulnerabilities of every package pinned in requirements.lock (and
in any other lock given, such as the images' deploy/docker/*/*.lock).

pip-audit does the auditing, against PyPI's per-release advisories (`/pypi/<name>/<version>/json`). Where it cannot
reach them it skips the package; so do some networks (this project's build machines reach PyPI through an access
that answers 404 for per-release JSON, and api.osv.dev does not resolve). For each package pip-audit skipped, the
project JSON (`/pypi/<name>/json`, which is reachable) is read instead: its `vulnerabilities` are those of the
latest release, so a pin that is the latest release is audited exactly, and an older pin is reported as not audited,
with the latest version beside it.

Exit status: 1 if any pinned version has a known vulnerability; with --strict, 2 if any package stayed unaudited;
else 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

PYPI = "https://pypi.org/pypi"


@dataclass(frozen=True)
class Finding:
    name: str
    version: str
    vulnerabilities: tuple[str, ...]
    audited_by: str | None
    """"pip-audit", "PyPI project JSON", or None when nothing could audit this version."""
    latest: str | None = None


def locked_pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a pip-compile lock file."""
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#", "-")):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.split()[0].rstrip("\\").strip()
    return pins


def pip_audit(pip_audit_command: str, lock: Path) -> dict:
    """pip-audit's JSON report of the lock's pins (no resolution, no installs: the lock is complete)."""
    done = subprocess.run(
        [pip_audit_command, "-s", "pypi", "-r", str(lock), "--no-deps", "--disable-pip", "--progress-spinner", "off", "-f", "json"],
        capture_output=True, text=True, check=False,
    )
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"pip-audit gave no report (exit {done.returncode}):\n{done.stderr[-3000:]}") from None


def from_project_json(client: httpx.Client, name: str, version: str) -> Finding:
    response = client.get(f"{PYPI}/{name}/json")
    if response.status_code != 200:
        return Finding(name, version, (), None)
    project = response.json()
    latest = project["info"]["version"]
    if latest != version:
        return Finding(name, version, (), None, latest)
    ids = tuple(vulnerability["id"] for vulnerability in project.get("vulnerabilities", []))
    return Finding(name, version, ids, "PyPI project JSON", latest)


def audit(lock: Path, pip_audit_command: str) -> list[Finding]:
    pins = locked_pins(lock)
    report = pip_audit(pip_audit_command, lock)
    findings = []
    with httpx.Client(timeout=30) as client:
        for dependency in report["dependencies"]:
            name = dependency["name"].lower()
            version = dependency.get("version") or pins[name]
            if "skip_reason" in dependency:
                findings.append(from_project_json(client, name, version))
            else:
                ids = tuple(vulnerability["id"] for vulnerability in dependency.get("vulns", []))
                findings.append(Finding(name, version, ids, "pip-audit"))
    return findings


def _line(finding: Finding) -> str:
    if finding.vulnerabilities:
        status = "VULNERABLE: " + ", ".join(finding.vulnerabilities)
    elif finding.audited_by:
        status = f"no known vulnerability ({finding.audited_by})"
    else:
        status = f"not audited (pinned {finding.version}, latest {finding.latest or '?'})"
    return f"{finding.name:<28} {finding.version:<16} {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classpulse_reliability.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--lock", type=Path, nargs="+", default=[Path("requirements.lock")], help="one or more lock files")
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit command (default: from PATH)")
    parser.add_argument("--strict", action="store_true", help="fail when a package could not be audited")
    args = parser.parse_args(argv)
    findings = []
    for lock in args.lock:
        print(f"{lock}:")
        lock_findings = audit(lock, args.pip_audit)
        for finding in lock_findings:
            print(_line(finding))
        findings += lock_findings
    vulnerable = [f for f in findings if f.vulnerabilities]
    unaudited = [f for f in findings if not f.audited_by]
    print(f"\n{len(findings)} pins in {len(args.lock)} lock files: {len(vulnerable)} with known vulnerabilities, {len(unaudited)} not audited")
    if vulnerable:
        return 1
    return 2 if args.strict and unaudited else 0


if __name__ == "__main__":
    sys.exit(main())
