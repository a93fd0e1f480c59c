"""`wisp export` and `wisp build`: from one machine to a Knative cluster (docs/production.md).

Unlike the other commands these need no daemon: they read manifests and code here and write files.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from wisp.api.errors import ManifestError
from wisp.export.build import BuildError, build_all, contexts, image_size
from wisp.export.export import ExportError, export
from wisp.export.options import ExportOptions, OptionError

KUBECTL_TIMEOUT_S = 300.0


def _fail(*lines: str) -> typer.Exit:
    for line in lines:
        typer.echo(line, err=True)
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        paths: Annotated[list[Path], typer.Argument(help="Manifest files or directories, as for `wisp up`.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="A new directory for what is written.")],
        registry: Annotated[
            str | None, typer.Option(help="Where images of local code go: REGISTRY/NAME:TAG.")
        ] = None,
        kafka: Annotated[
            str | None, typer.Option(help="The cluster's Kafka bootstrap servers, for this machine's Kafka.")
        ] = None,
        domain: Annotated[str | None, typer.Option(help="*.localhost custom domains become *.DOMAIN.")] = None,
        tag: Annotated[str | None, typer.Option(help="Image tag (default: a hash of the build context).")] = None,
        env: Annotated[
            list[str] | None,
            typer.Option("--env", help="NAME=VALUE for every container that sets NAME (repeatable)."),
        ] = None,
        apply: Annotated[bool, typer.Option("--apply", help="Then `kubectl apply -f OUTPUT`.")] = False,
        context: Annotated[
            str | None, typer.Option("--context", help="The kubeconfig context for --apply.")
        ] = None,
    ) -> None:
        """Write manifests a Knative cluster takes and a build context per local code directory."""
        started = time.perf_counter()
        try:
            options = ExportOptions.parse(registry, kafka, domain, tag, env or [])
            result = export(paths, output, options)
        except (OptionError, ExportError) as e:
            raise _fail(f"error: {e}") from None
        except ManifestError as e:
            raise _fail(f"error: {e.where}:", *(f"  {err}" for err in e.errors)) from None
        elapsed = time.perf_counter() - started
        for name in result.files:
            typer.echo(f"wrote {output / name}")
        for ctx in result.contexts:
            typer.echo(f"build context {output / 'build' / ctx.name} → {ctx.image} ({ctx.workload}"
                       f"{', ' + ctx.signature if ctx.signature else ''}; requirements: {ctx.requirements_source})")
        for hint in result.secret_hints:
            typer.echo(f"secret (create it in the cluster): {hint}")
        for note in result.notes + [n for c in result.contexts for n in c.notes]:
            typer.echo(f"note: {note}")
        typer.echo(f"exported in {elapsed:.2f}s")
        if apply:
            _kubectl_apply(output, context)

    @app.command("build")
    def build_command(
        directory: Annotated[Path, typer.Argument(help="The directory `wisp export -o` wrote.")],
        push: Annotated[bool, typer.Option("--push", help="Push each image after building it.")] = False,
        base_image: Annotated[
            str | None, typer.Option("--base-image", help="A Python base image (default python:3.11-slim).")
        ] = None,
        engine: Annotated[
            str | None, typer.Option(help="podman, docker or buildah (default: the first found).")
        ] = None,
        python: Annotated[
            str | None, typer.Option(help="The base image's Python X.Y (default: asked of the image).")
        ] = None,
    ) -> None:
        """Build (and push) an image from each build context, with podman, docker or buildah."""
        try:
            outcome = build_all(directory, base_image=base_image, engine_name=engine, python=python, push=push,
                                say=typer.echo)
        except BuildError as e:
            raise _fail(f"error: {e}") from None
        if outcome.engine is None:
            raise _fail(
                "error: no container engine here (podman, docker or buildah); these build contexts are complete "
                "(requirements installed in deps/) for CI to build with its engine:",
                *(f"  {c.path}  →  {c.image}" for c in contexts(directory)),
            )
        for ctx in outcome.built:
            size = image_size(outcome.engine, ctx.image)
            typer.echo(f"built {ctx.image}" + (f" ({size / 1e6:.1f} MB)" if size else ""))


def _kubectl_apply(output: Path, context: str | None) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise _fail("error: --apply needs kubectl on PATH; the manifests are written, apply them with "
                    f"`kubectl apply -f {output}`")
    argv = [kubectl, "apply", "-f", str(output)] + (["--context", context] if context else [])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise _fail(f"error: kubectl apply did not finish within {KUBECTL_TIMEOUT_S:g}s") from None
    typer.echo(done.stdout, nl=False)
    if done.returncode != 0:
        raise _fail(f"error: kubectl apply failed (exit {done.returncode}):", done.stderr.strip())
