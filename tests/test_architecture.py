"""The house plan holds: layers (import-linter), no reach into another package's private
modules, modules a person can read, and a store that needs neither Keras nor JAX."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "tricklab"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """Every module ``name`` imports (function-level imports included), absolute."""
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            found.append((node.lineno, base))
    return found


def test_no_module_imports_another_packages_private_module() -> None:
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for line, imported in _imports(name, path):
            parts = imported.split(".")
            private = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
            if parts[0] != "tricklab" or private is None or parts[private].startswith("__"):
                continue
            owner = ".".join(parts[:private])  # the package the private module belongs to
            if name != owner and not name.startswith(owner + "."):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {imported}")
    assert wrong == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_importing_the_store_imports_neither_keras_nor_jax() -> None:
    code = (
        "import sys, tricklab.store, tricklab.engines.contract\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'jax', 'tensorflow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is in the dev extra")
def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "tricklab"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    def lint_imports() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LINT_IMPORTS), "--no-cache"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )

    assert lint_imports().returncode == 0  # the copy keeps the contract, as the tree does
    # The store asking the report for something: inside a function, where it hides best.
    with (copy / "store" / "_claims.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _upward() -> None:\n    from tricklab.report import load_report  # noqa\n")
    broken = lint_imports()
    assert broken.returncode == 1
    assert "tricklab.store is not allowed to import tricklab.report" in broken.stdout


def test_no_import_cycles() -> None:
    """Not even through function-level imports: every package reads in one direction."""
    import grimp

    graph = grimp.build_graph("tricklab", cache_dir=None)
    cycles = [
        (module, other)
        for module in sorted(graph.modules)
        for other in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=other, imported=module)
    ]
    assert cycles == []
