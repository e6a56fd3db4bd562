"""The complexity gate of `make lint`: no production function above cyclomatic complexity 20.

Complexity is radon's measure (every branch, loop, boolean operator and comprehension
condition counts). A function above the limit does too many things at once: split it into
a pure plan and the thin code that carries the plan out.
"""
from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit

LIMIT = 20
PACKAGES = ("kubecore", "services", "cluster", "minikubectl")


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


def main() -> int:
    found = measure(Path(__file__).resolve().parent.parent)
    for name, value in sorted(found.items()):
        print(f"{name} has complexity {value} (limit {LIMIT}): split it")  # noqa: T201 (a command-line check)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
