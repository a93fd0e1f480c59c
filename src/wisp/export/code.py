"""What a local code directory needs in its image: its files, the local modules it imports from the
directories above it (an app that puts its parent on `sys.path`, as the barrage demo does), and the
distributions it imports.

Imports are read with `ast` from every `.py` file (including imports inside functions, which run later), so
nothing of the user's code runs here; the entry point is imported separately (entry_check.py).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_FILES = 5000
MAX_BYTES = 200 * 1024 * 1024
# Never part of an image: caches, virtualenvs, VCS data, wisp's state.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".mypy_cache",
                          ".pytest_cache", ".ruff_cache", "node_modules", ".wisp", ".idea", ".vscode"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Provided by the function runtime the image ships (runtime_files/); never a PyPI requirement.
PROVIDED = frozenset({"wisp"})


class CodeError(ValueError):
    """A code directory that cannot become an image; the message names the file."""


@dataclass
class CodeTree:
    """The files of one image's /app: `root` is laid out at /app, the code directory at `workdir` inside it."""

    root: Path
    workdir: Path  # relative to root
    files: list[Path] = field(default_factory=list)  # relative to root, sorted
    imports: set[str] = field(default_factory=set)  # third-party modules, dotted as imported
    unresolved: set[str] = field(default_factory=set)  # imported, found neither here nor installed
    provided: set[str] = field(default_factory=set)  # imported and shipped by the function runtime (`wisp`)


def gather(code_dir: Path, top: Path) -> CodeTree:
    """The code directory plus the modules it imports from its ancestors up to `top` (inclusive; none when
    the code directory is `top` or outside it)."""
    code_dir = code_dir.resolve()
    top = top.resolve()
    ancestors = [p for p in code_dir.parents if p == top or top in p.parents]
    files = set(_walk(code_dir))
    dotted = _imports(files)
    imports = {name.split(".")[0] for name in dotted}
    local = _top_level_names(code_dir)
    included: dict[str, Path] = {}
    pending = sorted(imports - local)
    seen: set[str] = set()
    external: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in sys.stdlib_module_names or name == "__future__" or name in local:
            continue
        found = _find_in(name, ancestors)
        if found is None:
            external.add(name)
            continue
        included[name] = found
        found_files = set(_walk(found)) if found.is_dir() else {found}
        files |= found_files
        more = _imports(found_files)
        dotted |= more
        pending.extend(sorted({n.split(".")[0] for n in more} - seen))
    root = min([code_dir, *(p.parent for p in included.values())], key=lambda p: len(p.parts))
    tree = CodeTree(root, code_dir.relative_to(root))
    tree.files = sorted(f.relative_to(root) for f in files)
    _check_size(root, tree.files)
    installed = importlib.metadata.packages_distributions()
    tree.provided = external & PROVIDED
    for name in external - PROVIDED:
        if name in installed:
            tree.imports |= {d for d in dotted if d.split(".")[0] == name}
        else:
            tree.unresolved.add(name)
    return tree


def _walk(path: Path) -> list[Path]:
    if path.is_file():
        return [path.resolve()]
    out: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.is_symlink() and not child.resolve().is_relative_to(path.resolve()):
            raise CodeError(f"{child}: a symlink out of the code directory cannot go into an image")
        if child.is_dir():
            if child.name not in SKIPPED_DIRS and not child.name.endswith(".egg-info"):
                out.extend(_walk(child))
        elif child.is_file() and not child.name.endswith(SKIPPED_SUFFIXES):
            out.append(child.resolve())
        if len(out) > MAX_FILES:
            raise CodeError(f"{path}: more than {MAX_FILES} files; an image's code directory should hold the app only")
    return out


def _check_size(root: Path, files: Iterable[Path]) -> None:
    total = sum((root / f).stat().st_size for f in files)
    if total > MAX_BYTES:
        raise CodeError(f"{root}: the code is {total // 2**20} MiB, more than {MAX_BYTES // 2**20} MiB")


def _imports(files: Iterable[Path]) -> set[str]:
    """The modules the `.py` files import absolutely, dotted (`opentelemetry.sdk.trace`)."""
    names: set[str] = set()
    for file in files:
        if file.suffix != ".py":
            continue
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, ValueError) as e:
            raise CodeError(f"{file}: not valid Python: {e}") from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def _top_level_names(directory: Path) -> set[str]:
    """Modules importable from `directory` itself (its own `.py` files and packages)."""
    names = {p.stem for p in directory.glob("*.py")}
    names |= {p.name for p in directory.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    return names


def _find_in(name: str, directories: list[Path]) -> Path | None:
    """`name`.py or a `name/` package in the nearest of `directories`."""
    for directory in directories:
        module = directory / f"{name}.py"
        if module.is_file():
            return module.resolve()
        package = directory / name
        if package.is_dir() and any(package.glob("*.py")):
            return package.resolve()
    return None


# -- requirements ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirements:
    text: str  # requirements.txt for the image
    source: str  # where it came from: requirements.txt, pyproject.toml or "inferred"
    missing: tuple[str, ...]  # imported distributions the declared requirements do not name


def requirements(code_dir: Path, tree: CodeTree) -> Requirements:
    """The code directory's own requirements.txt, else its pyproject.toml's dependencies, else the
    distributions its imports come from, pinned to the versions installed here (the ones wisp ran it with)."""
    imported = _distributions(tree.imports)
    declared_file = code_dir / "requirements.txt"
    pyproject = code_dir / "pyproject.toml"
    if declared_file.is_file():
        text = declared_file.read_text(encoding="utf-8")
        return Requirements(text, "requirements.txt", _not_named(imported, text.splitlines()))
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError as e:
            raise CodeError(f"{pyproject}: {e}") from None
        deps = [str(d) for d in project.get("dependencies", []) if isinstance(d, str)]
        text = f"# [project].dependencies of {pyproject.name}\n" + "".join(f"{d}\n" for d in deps)
        return Requirements(text, "pyproject.toml", _not_named(imported, deps))
    lines = [f"{dist}=={importlib.metadata.version(dist)}" for dist in sorted(imported)]
    header = ("# Inferred by `wisp export` from the imports of this code (no requirements.txt or pyproject.toml\n"
              "# beside it), pinned to the versions it ran with under wisp.\n")
    return Requirements(header + "".join(f"{line}\n" for line in lines), "inferred", ())


def _distributions(modules: Iterable[str]) -> set[str]:
    """The installed distributions the modules come from. A top-level name several distributions share (the
    `opentelemetry` namespace) is resolved by which distribution holds the imported submodule's files."""
    installed = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for module in modules:
        candidates = installed.get(module.split(".")[0]) or []
        if len(candidates) > 1:
            parts = module.split(".")
            for depth in range(len(parts), 0, -1):
                holders = [d for d in candidates if _holds(d, "/".join(parts[:depth]))]
                if holders:
                    candidates = holders[:1]
                    break
        found.update(candidates[:1])
    return found


@functools.cache
def _modules_of(distribution: str) -> frozenset[str]:
    """The module paths (`opentelemetry/sdk/trace`) a distribution's files make up."""
    out: set[str] = set()
    for file in importlib.metadata.files(distribution) or []:
        path = PurePosixPath(str(file))
        if path.suffix == ".py":
            out.add(str(path.with_suffix("")))
        out.update(str(parent) for parent in path.parents if str(parent) != ".")
    return frozenset(out)


def _holds(distribution: str, module_path: str) -> bool:
    return module_path in _modules_of(distribution)


def _not_named(distributions: set[str], lines: Iterable[str]) -> tuple[str, ...]:
    named = {_requirement_name(line) for line in lines}
    return tuple(sorted(d for d in distributions if _normal(d) not in named))


def _requirement_name(line: str) -> str:
    line = line.split("#", 1)[0].strip()
    for stop in "[<>=!~;@ ":
        line = line.split(stop, 1)[0]
    return _normal(line)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def runtime_requirements(names: Iterable[str]) -> str:
    """Pinned requirements of the function runtime the image ships: the versions this wisp runs on."""
    lines = []
    for dist in names:
        try:
            lines.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional speed-up (uvloop, httptools) this machine lacks: uvicorn does without
    return "# wisp's function runtime, at the versions wisp served the function with\n" + "".join(
        f"{line}\n" for line in lines
    )
