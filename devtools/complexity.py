"""The complexity gate of `make lint`: no production function above cyclomatic complexity 20.

Complexity is radon's measure (every branch, loop, boolean operator and comprehension
condition counts). A function above the limit does too many things at once: split it into
a pure plan and the thin code that carries the plan out.

Functions written before the gate existed are listed in `ALLOWED` with the complexity they
had; the gate fails if one of them grows, and also when one has been split and is still
listed, so the list only shrinks.
"""
from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit

LIMIT = 20
PACKAGES = ("kubecore", "services", "cluster", "minikubectl")

# "path:qualified name" -> the complexity it had when the gate was introduced.
ALLOWED: dict[str, int] = {
}


def measure(root: Path) -> dict[str, int]:
    """Every function and method above LIMIT under the production packages."""
    found: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for block in cc_visit(path.read_text()):
                for item in [block, *getattr(block, "methods", ())]:
                    if item.complexity > LIMIT and getattr(item, "letter", "F") in ("F", "M"):
                        found[f"{path.relative_to(root).as_posix()}:{item.fullname}"] = item.complexity
    return found


def problems(found: dict[str, int], allowed: dict[str, int]) -> list[str]:
    out = []
    for name, value in sorted(found.items()):
        if name not in allowed:
            out.append(f"{name} has complexity {value} (limit {LIMIT}): split it")
        elif value > allowed[name]:
            out.append(f"{name} grew from complexity {allowed[name]} to {value} (limit {LIMIT}): split it")
    for name in sorted(set(allowed) - set(found)):
        out.append(f"{name} is no longer above {LIMIT}: remove it from ALLOWED in {__file__}")
    return out


def main() -> int:
    found = measure(Path(__file__).resolve().parent.parent)
    report = problems(found, ALLOWED)
    for line in report:
        print(line)  # noqa: T201 (a command-line check)
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
