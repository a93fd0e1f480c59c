"""A build context per local code directory: what goes in it, its content hash, and the image it becomes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import wisp
from wisp.api.func_python import FUNC_PYTHON
from wisp.export import code, containerfile

# The function runtime the image runs: copies of wisp's own modules (architecture.md: runtime contract).
_WISP_DIR = Path(wisp.__file__).resolve().parent
RUNTIME_MODULES = ("__init__.py", "serving/workloads/signatures.py", "serving/workloads/function_app.py")
RUNTIME_DISTRIBUTIONS = ("starlette", "cloudevents", "uvicorn", "httptools", "uvloop")
_RUNTIME_FILES = Path(__file__).resolve().parent / "runtime_files"
_SERVE = _RUNTIME_FILES / "wisp_serve.py"
TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass
class BuildContext:
    """One image: `files` maps a path in the context to its bytes (the code is read when written)."""

    name: str  # the image's name under the registry, and the context's directory name
    code_dir: Path
    workload: str  # function | container | func (a Knative Functions project)
    image: str = ""  # REGISTRY/NAME:TAG, set once the content hash is known
    signature: str = ""  # of a function, from the entry check
    files: dict[str, bytes] = field(default_factory=dict)
    requirements_source: str = ""
    notes: list[str] = field(default_factory=list)

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()


def runtime_files() -> dict[str, bytes]:
    """The function runtime, as files under `runtime/` of a context."""
    files = {f"runtime/wisp/{m}": (_WISP_DIR / m).read_bytes() for m in RUNTIME_MODULES}
    for package in ("serving", "serving/workloads"):
        files[f"runtime/wisp/{package}/__init__.py"] = b'"""Only what the function runtime needs."""\n'
    files["runtime/wisp_serve.py"] = _SERVE.read_bytes()
    return files


def func_runtime_files() -> dict[str, bytes]:
    return {"runtime/func_serve.py": (_RUNTIME_FILES / "func_serve.py").read_bytes()}


def build_context(name: str, code_dir: Path, top: Path, workload: str, *, target: str, command: list[str],
                  drain_seconds: int, base_image: str) -> BuildContext:
    """Everything an image of `code_dir` needs, as files; CodeError when it cannot be one."""
    tree = code.gather(code_dir, top)
    reqs = code.requirements(code_dir, tree)
    ctx = BuildContext(name, code_dir.resolve(), workload, requirements_source=reqs.source)
    for rel in tree.files:
        ctx.files[str(PurePosixPath("app") / PurePosixPath(*rel.parts))] = (tree.root / rel).read_bytes()
    ctx.files["requirements.txt"] = reqs.text.encode()
    ships_runtime = workload == "function" or bool(tree.provided)
    if workload == "func":
        ctx.files.update(func_runtime_files())
        ctx.files["runtime-requirements.txt"] = f"# the Knative Functions middleware\n{FUNC_PYTHON}\n".encode()
        ships_runtime = False
    if ships_runtime:
        ctx.files.update(runtime_files())
        ctx.files["runtime-requirements.txt"] = code.runtime_requirements(RUNTIME_DISTRIBUTIONS).encode()
    workdir = PurePosixPath(*tree.workdir.parts) if tree.workdir.parts else PurePosixPath(".")
    if workload == "func":
        text = containerfile.func_project(base_image, target)
    elif workload == "function":
        text = containerfile.function(base_image, workdir, target, drain_seconds)
    else:
        text = containerfile.container(base_image, workdir, command, ships_runtime)
    ctx.files["Containerfile"] = text.encode()
    ctx.files[".dockerignore"] = b"deps/**/__pycache__\n"
    if reqs.missing:
        ctx.notes.append(f"{code_dir}: imports {', '.join(reqs.missing)}, which its {reqs.source} does not name")
    if tree.unresolved:
        ctx.notes.append(f"{code_dir}: imports {', '.join(sorted(tree.unresolved))}, found neither beside it nor "
                         "installed here; left out of requirements.txt")
    return ctx

