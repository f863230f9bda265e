"""The package's import graph: no circle, dependencies pointing one way along the stages, and the
light entry points (commands' --help, table and figure jobs) free of the heavy libraries."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import facesleuth

PACKAGE = Path(facesleuth.__file__).parent

#: Top to bottom: a module may import its own layer or one below, never one above. The stages
#: follow the data (videos -> faces -> runs -> predictions -> tables); the commands, the scanner,
#: the service and the demo sit on top; names, config, I/O and runtime helpers at the bottom.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("facesleuth.cli", "facesleuth.__main__"),
    ("facesleuth.scan", "facesleuth.serve", "facesleuth.demo"),
    ("facesleuth.report",),
    ("facesleuth.evaluate",),
    ("facesleuth.train",),
    ("facesleuth.published",),
    ("facesleuth.extract",),
    ("facesleuth.manifests",),
)
HEAVY = ("torch", "torchvision", "timm", "numpy", "pandas", "pyarrow", "cv2", "av", "PIL", "sklearn", "matplotlib")


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The package module that ``name`` (a module, or a name inside one) belongs to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _base(module: str, path: Path, level: int) -> str:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at module level or inside functions."""
    modules = package_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    source = ".".join(filter(None, (_base(module, path, node.level), source)))
                # `from package import module` imports that module; `from module import name`, the module
                names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                         for alias in node.names]
            for name in names:
                target = _owner(name, modules) if name.split(".")[0] == "facesleuth" else None
                if target and target != module:
                    graph[module].add(target)
    return graph


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return len(LAYERS)  # the top-level modules: registry, config, io, runtime, samples


def test_the_graph_sees_function_local_and_package_imports():
    graph = import_graph()
    # cli/__init__ imports its subcommands by name at run time (importlib), so check known static edges
    assert "facesleuth.extract.video" in graph["facesleuth.extract.flows"]  # module level
    assert "facesleuth.train.models" in graph["facesleuth.report.tables"]  # inside a function
    assert "facesleuth.extract.perturb" in graph["facesleuth.report.figures"]  # `from package import module`


def test_the_package_has_no_import_circle():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")
    assert len(order) == len(package_modules())


def test_dependencies_point_down_the_stages():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items() for target in sorted(targets)
              if layer_of(target) < layer_of(module)]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_every_module_is_in_a_layer_or_at_the_bottom_on_purpose():
    bottom = {module for module in package_modules() if layer_of(module) == len(LAYERS)}
    assert bottom == {"facesleuth", "facesleuth.config", "facesleuth.io", "facesleuth.registry",
                      "facesleuth.runtime", "facesleuth.samples"}


def test_the_library_imports_nothing_of_the_workflow():
    for module, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert not {"workflow", "scripts", "snakemake"} & set(roots), f"{module} imports {roots}"


def _heavy_modules_after(code: str) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(" ".join(name for name in {HEAVY!r} if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()


@pytest.mark.parametrize("command", ["scan", "serve", "worker", "weights", "track", "faces", "samples", "config-docs"])
def test_a_commands_help_loads_no_heavy_library(command):
    loaded = _heavy_modules_after(f"""
        import contextlib, io
        from facesleuth.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main([{command!r}, "--help"])
    """)
    assert not loaded, f"facesleuth {command} --help imports {loaded}"


def test_table_and_figure_jobs_import_no_torch():
    loaded = _heavy_modules_after("""
        import facesleuth.report.figures, facesleuth.report.robustness, facesleuth.report.studies
        import facesleuth.report.tables
    """)
    assert "torch" not in loaded and "timm" not in loaded, loaded
