"""`make bench` runs bench/ from a virtualenv with only requirements.txt installed.

The smoke run (tests/test_bench_smoke.py) uses the development virtualenv, so it would
not notice bench/ importing a package that only requirements-dev.txt installs; this does.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"articles", "bench", "comments", "comments_project"}
# The one script of bench/ that `make bench` does not run: it times the renderer on the
# test suite's corpus, from the development virtualenv.
DEVELOPMENT_ONLY = {"render_pathological.py"}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(line: str) -> str:
    return _normalised(re.split(r"[\[=<>!~; ]", line.strip(), maxsplit=1)[0])


def production_distributions() -> set[str]:
    """requirements.txt and everything it pulls in, as installed here."""
    wanted = [
        _requirement_name(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]
    found: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        # Optional extras ("; extra == ...") are only in when requirements.txt names them.
        wanted += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return found


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_benchmark_imports_only_what_production_installs():
    distributions_of = metadata.packages_distributions()
    allowed = production_distributions()
    outside = {}
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name in DEVELOPMENT_ONLY:
            continue
        for module in top_level_imports(path):
            if module in sys.stdlib_module_names or module in PROJECT_PACKAGES:
                continue
            owners = {_normalised(d) for d in distributions_of.get(module, [])}
            if not owners & allowed:
                outside.setdefault(path.name, []).append(module)

    assert not outside, f"bench/ imports packages requirements.txt does not install: {outside}"


def test_the_check_knows_a_test_only_package_when_it_sees_one():
    allowed = production_distributions()

    assert {"django", "granian", "httpx", "asgiref"} <= allowed
    assert not {"pytest", "schemathesis", "playwright"} & allowed
