"""The package's shape: no import circles, and Optuna's private names in one module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autosize"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every autosize module ``path`` imports, at the top, inside functions or for types."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            found |= subs
            if len(subs) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & modules.keys()


def test_no_module_imports_itself_through_others() -> None:
    """An import circle (even a lazy or type-only one) means two modules are one concern or
    a record sits in the wrong one."""
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    # a package importing its own submodules (re-exports) is not a circle through them
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    circles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                circles.append(" -> ".join([*path[path.index(d) :], d]))
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, circles


# Optuna's private names autosize uses (autosize/search/optuna_private.py): a private module,
# a study's storage, a trial's id and the backend methods the cached storage calls.
PRIVATE = re.compile(
    r"\boptuna(\.\w+)*\._\w+|\._storage\b|\._trial_id\b|\b_get_stale_trial_ids\b"
    r"|\b_create_new_trial\b|\b_get_best_trial_id\b|\b_set_trial_param\b|LazyRandomState"
)


def test_optunas_private_names_live_in_one_module() -> None:
    """Everywhere else goes through autosize/search/optuna_private.py, whose tests fail when
    an Optuna release changes a name. One exception: the reconnecting storage overrides
    RDBStorage._get_trials (in that module's CACHED_BACKEND_CALLS) to hold back Optuna's log
    of a lost connection."""
    allowed = PACKAGE / "search" / "optuna_private.py"
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == allowed:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE.search(line.split("#")[0]) and "``" not in line:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
