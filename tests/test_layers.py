"""The house rules of the code layout: one import root, layers that run one way, no circles.

CLI -> deployments (serving) -> flows -> tasks -> library -> settings. The library never imports
Prefect. Read from the source files with `ast` (nothing is imported), so a violation names the
module and the line that breaks the rule.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Import root -> folder on disk (pyproject.toml's package-dir says the same).
FOLDERS = {
    "ragline": REPO / "ragline",
    "ragline.flows": REPO / "flows",
    "ragline.tasks": REPO / "tasks",
    "ragline.settings": REPO / "settings",
    "ragline.deployments": REPO / "deployments",
}
# Higher layers may import lower ones, never the reverse.
LAYERS = ["ragline.settings", "library", "ragline.tasks", "ragline.flows", "ragline.deployments", "ragline.cli"]
PREFECT_FREE = {"ragline.settings", "library"}


def own_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def layer_of(module: str) -> str:
    for layer in LAYERS:
        if layer != "library" and (module == layer or module.startswith(layer + ".")):
            return layer
    return "library"


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the file, function-level ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = own_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    problems = []
    for module, path in modules.items():
        for name, line in imports_of(module, path):
            top = name.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line}"
            if top in ("flows", "tasks", "settings", "deployments"):
                problems.append(f"{where} imports {name}: use ragline.{name}")
            if top in ("prefect", "prefect_dask") and layer_of(module) in PREFECT_FREE:
                problems.append(f"{where} imports {name}: the library and settings never import Prefect")
            target = resolve(name, modules) if top == "ragline" else None
            if target and target != module:
                graph[module].add(target)
                if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module)):
                    problems.append(f"{where} imports {target}: {layer_of(module)} must not import {layer_of(target)}")
    return graph, problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_layers_run_one_way_and_the_library_never_imports_prefect():
    _, problems = import_graph()
    assert problems == []


def test_no_import_circles():
    graph, _ = import_graph()
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    # The check above means something only if a circle would be reported.
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_package_folder_is_installed_under_the_one_root():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    on_disk = {m for m, p in own_modules().items() if p.name == "__init__.py"}
    assert set(setuptools["packages"]) == on_disk
    mapped = {name: REPO / folder for name, folder in setuptools["package-dir"].items()}
    assert mapped == FOLDERS


def test_prefect_entrypoints_name_importable_flows():
    """prefect.yaml and `ragline deploy` point at flows that exist under the import root."""
    import yaml

    from ragline.deployments import register

    entrypoints = [
        d["entrypoint"] for d in yaml.safe_load((REPO / "deployments/prefect.yaml").read_text())["deployments"]
    ]
    entrypoints += [register.INGEST_ENTRYPOINT, register.SCALED_INGEST_ENTRYPOINT, register.ASK_ENTRYPOINT]
    assert len(entrypoints) == 5
    for entrypoint in entrypoints:
        file, _, name = entrypoint.partition(":")
        path = REPO / file
        assert path.parent.name == "flows" and path.is_file(), f"{entrypoint}: not a file in flows/"
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert name in defined, f"{entrypoint}: {file} defines no {name}"
