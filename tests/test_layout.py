"""The package layout rules (docs/architecture.md): imports run one way, CLI -> library -> agents /
memory_envs; only the CLI layer parses arguments, prints or exits."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("memory_envs", "agents", "baselines")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p))
            for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def runtime_nodes(tree: ast.AST):
    """``ast.walk`` without the bodies of ``if TYPE_CHECKING:`` (imports for type hints only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def imported(tree: ast.Module) -> set[str]:
    """Every module an import statement anywhere in ``tree`` names at run time (function-level imports too)."""
    names = set()
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: {m for m in imported(tree) if m in modules and m != name} for name, tree in modules.items()}


def is_cli(name: str) -> bool:
    return name == "baselines.cli" or name.startswith("baselines.cli.")


def layer(name: str) -> int:
    return 2 if is_cli(name) else 1 if name.startswith("baselines") else 0


def test_imports_run_one_way():
    wrong = [(a, b) for a, targets in project_graph().items() for b in targets if layer(b) > layer(a)]
    assert not wrong, f"imports against the layers (CLI -> library -> agents/memory_envs): {wrong}"


def test_no_import_cycle():
    graph = project_graph()
    # a package imports its own submodules in __init__; a submodule importing a sibling through the
    # package is not a cycle of code, so drop the edges from a package to its own submodules
    edges = {a: {b for b in targets if not b.startswith(a + ".")} for a, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in edges:
        if name not in state:
            visit(name, [name])


def test_only_the_cli_layer_parses_prints_or_exits():
    offenders = []
    for name, tree in project_modules().items():
        if is_cli(name):
            continue
        if "argparse" in imported(tree):
            offenders.append(f"{name} imports argparse")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{name}:{node.lineno} calls print")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "sys"):
                offenders.append(f"{name}:{node.lineno} calls sys.exit")
    assert not offenders, offenders


def test_the_checks_see_a_violation():
    """The graph and the call scan are not vacuous: they find the CLI's own argparse and prints."""
    modules = project_modules()
    assert "argparse" in imported(modules["baselines.cli"])
    assert any(layer(b) == 1 for b in project_graph()["baselines.cli.train"])


def test_the_command_list_imports_only_what_it_shows():
    """Issue 34, point 6: `memory-envs --help` (and --version, a mistyped command) imports no command module and
    no torch; a command imports its own module only."""
    import subprocess
    import sys

    script = ("import sys\nfrom baselines.cli import main\nfor argv in {argv}:\n    try:\n        main(argv)\n"
              "    except SystemExit:\n        pass\nprint(sorted(m for m in sys.modules if m == 'torch' or "
              "m.startswith('baselines.cli.')))")
    for argv, loaded in (([["--help"], ["--version"], ["trian"]], ["baselines.cli.args"]),
                         ([["rl", "--help"]], ["baselines.cli.args", "baselines.cli.progress", "baselines.cli.rl",
                                               "torch"])):
        ended = subprocess.run([sys.executable, "-c", script.format(argv=argv)], capture_output=True, text=True,
                               cwd=ROOT, timeout=300)
        assert ended.stdout.splitlines()[-1] == str(loaded), ended.stderr
