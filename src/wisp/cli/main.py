"""The `wisp` command: `up` runs the daemon; the rest talk to its control API like kubectl and kn do."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer

from wisp.api import kinds
from wisp.api.errors import ManifestError, UnknownKindError
from wisp.api.kinds import Kind
from wisp.api.loader import LoadedDoc, load_paths, load_text
from wisp.cli import export_commands, kubeconfig, render
from wisp.cli.client import DEFAULT_API, ApiClient, ApiError, DaemonUnreachable, send_event
from wisp.types import Clock, Resource

OUTPUT_FORMATS = ("yaml", "json", "wide", "name")


@dataclass(frozen=True)
class Settings:
    api: str
    token: str | None
    now: Clock

    def client(self) -> ApiClient:
        return ApiClient(self.api, token=self.token)


def _fail(*lines: str) -> typer.Exit:
    for line in lines:
        typer.echo(line, err=True)
    return typer.Exit(1)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn the errors a command can meet into kubectl-like messages on stderr and exit code 1."""
    try:
        yield
    except DaemonUnreachable as exc:
        raise _fail(str(exc)) from None
    except ApiError as exc:
        raise _fail(*render.status_error_lines(exc.reason, exc.message, exc.causes)) from None
    except UnknownKindError as exc:
        raise _fail(f"error: {exc.args[0] if exc.args else exc}") from None
    except httpx.HTTPError as exc:  # e.g. the daemon went away in the middle of `logs -f`
        raise _fail(f"error: {type(exc).__name__}: {exc}") from None
    except ManifestError as exc:
        head = f"error: {exc.where}: invalid manifest" if exc.where else "error: invalid manifest"
        raise _fail(head, *(f"  {e}" for e in exc.errors)) from None


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_object(Settings)
    assert settings is not None, "the app callback sets Settings"
    return settings


def _load(paths: Sequence[Path]) -> list[Resource]:
    """Resources from files and directories; `-` reads standard input, as `kubectl apply -f -` does."""
    return [doc.resource for doc in _load_docs(paths)]


def _load_docs(paths: Sequence[Path]) -> list[LoadedDoc]:
    docs: list[LoadedDoc] = []
    for path in paths:
        docs += load_text(sys.stdin.read()) if str(path) == "-" else load_paths([path])
    return docs


def _known_kinds(docs: list[LoadedDoc]) -> None:
    """Every document names a kind wisp serves, or UnknownKindError naming the first that does not."""
    for doc in docs:
        resource = doc.resource
        try:
            kinds.for_manifest(str(resource.get("apiVersion", "")), str(resource.get("kind", "")))
        except UnknownKindError as exc:
            raise UnknownKindError(f"{doc.where}: {exc.args[0] if exc.args else exc}; nothing was deleted") from None


NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the object.")]
FilesOpt = Annotated[
    list[Path],
    typer.Option("--filename", "-f", help="A manifest file or directory (repeatable; `-` for stdin)."),
]


def make_app(clock: Clock = time.time) -> typer.Typer:
    """Build the CLI; `clock` gives `now` for AGE columns (a fake one in tests)."""
    app = typer.Typer(
        name="wisp",
        help="Run Knative Services, sources, brokers and triggers on one machine.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def main(
        ctx: typer.Context,
        api: Annotated[
            str, typer.Option("--api", envvar="WISP_API", help="The control API's URL.")
        ] = DEFAULT_API,
        token: Annotated[
            str | None, typer.Option("--token", envvar="WISP_TOKEN", help="Bearer token for the control API.")
        ] = None,
    ) -> None:
        ctx.obj = Settings(api=api, token=token or None, now=clock)

    @app.command()
    def up(
        paths: Annotated[list[Path] | None, typer.Argument(help="Manifests to apply at start.")] = None,
        port: Annotated[int, typer.Option(help="Ingress port.")] = 8080,
        api_port: Annotated[int, typer.Option("--api-port", help="Control API and console port.")] = 8001,
        state_dir: Annotated[Path, typer.Option("--state-dir", help="Where wisp keeps its state.")] = Path(
            ".wisp"
        ),
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        kafka: Annotated[
            str | None,
            typer.Option(help="Bootstrap servers HOST:PORT of an existing Kafka (default: start one)."),
        ] = None,
        max_instances: Annotated[
            int | None,
            typer.Option("--max-instances", min=1,
                         help="Instances of all revisions together (default: from memory and CPUs)."),
        ] = None,
        container_engine: Annotated[
            str,
            typer.Option("--container-engine", envvar="WISP_CONTAINER_ENGINE",
                         help="What runs OCI images: podman, docker, or auto (podman, else docker)."),
        ] = "auto",
    ) -> None:
        """Run the wisp daemon in the foreground until Ctrl-C."""
        if container_engine not in ("auto", "podman", "docker"):
            raise _fail(f"error: --container-engine must be auto, podman or docker, not {container_engine!r}")
        # Imported here so every other command works (and starts fast) without the daemon's dependencies;
        # by name, because the daemon module is written in parallel with this one.
        try:
            daemon = importlib.import_module("wisp.daemon")
        except ModuleNotFoundError as exc:
            if exc.name != "wisp.daemon":
                raise
            raise _fail("error: this build of wisp has no daemon (wisp.daemon is missing)") from None

        options = daemon.DaemonOptions(
            paths=list(paths or []), port=port, api_port=api_port, state_dir=state_dir, host=host, kafka=kafka,
            max_instances=max_instances, container_engine=container_engine,
        )
        raise typer.Exit(daemon.run(options))

    @app.command()
    def apply(ctx: typer.Context, filename: FilesOpt) -> None:
        """Apply every document of the given manifests at once (nothing is half-applied)."""
        with _reported(), _settings(ctx).client() as client:
            resources = _load(filename)
            if not resources:
                raise _fail("error: no objects passed to apply")
            for result in client.apply(resources):
                typer.echo(render.result_line(result))
                for warning in result.get("warnings") or []:
                    typer.echo(f"Warning: {warning}", err=True)

    @app.command()
    def get(
        ctx: typer.Context,
        kind_name: Annotated[
            str, typer.Argument(metavar="KIND", help="ksvc, revisions, pods, kpa, brokers, ...")
        ],
        name: Annotated[str | None, typer.Argument(help="One object's name.")] = None,
        namespace: NamespaceOpt = "default",
        all_namespaces: Annotated[
            bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.")
        ] = False,
        output: Annotated[
            str | None, typer.Option("--output", "-o", help="yaml, json, wide or name.")
        ] = None,
    ) -> None:
        """List objects of a kind (or show one) as a table, JSON or YAML."""
        settings = _settings(ctx)
        if output is not None and output not in OUTPUT_FORMATS:
            raise _fail(
                f"error: unable to match a printer suitable for the output format {output!r}, "
                f"allowed formats are: {','.join(OUTPUT_FORMATS)}"
            )
        with _reported(), settings.client() as client:
            kind = kinds.lookup(kind_name)
            scope = None if all_namespaces and name is None else namespace
            items = [client.get(kind, name, namespace)] if name else client.list_objects(kind, scope)
            _print_objects(client, kind, items, scope, settings.now(), output, single=name is not None)

    @app.command()
    def describe(
        ctx: typer.Context,
        kind_name: Annotated[str, typer.Argument(metavar="KIND")],
        name: Annotated[str, typer.Argument()],
        namespace: NamespaceOpt = "default",
    ) -> None:
        """Show one object: metadata, key spec, status conditions (and a ksvc's traffic and revisions)."""
        settings = _settings(ctx)
        with _reported(), settings.client() as client:
            kind = kinds.lookup(kind_name)
            obj = client.get(kind, name, namespace)
            revisions = client.list_objects(kinds.REVISION, namespace) if kind is kinds.SERVICE else []
            ctx_ = render.Context(settings.now(), render.revision_traffic([obj]) if revisions else {})
            typer.echo(render.describe(kind, obj, ctx_, revisions), nl=False)

    @app.command()
    def delete(
        ctx: typer.Context,
        kind_name: Annotated[str | None, typer.Argument(metavar="KIND")] = None,
        name: Annotated[str | None, typer.Argument(metavar="NAME")] = None,
        filename: FilesOpt = [],  # noqa: B006 - typer needs a literal default for a list option
        namespace: NamespaceOpt = "default",
        ignore_not_found: Annotated[
            bool, typer.Option("--ignore-not-found", help="Do not fail when an object is already gone.")
        ] = False,
    ) -> None:
        """Delete one object (`KIND NAME`) or everything a manifest names (`-f PATH`)."""
        if bool(filename) == bool(kind_name):
            raise _fail("error: give either KIND NAME or -f PATH")
        with _reported(), _settings(ctx).client() as client:
            if filename:
                docs = _load_docs(filename)
                _known_kinds(docs)  # all or nothing: a bad document is found before anything is deleted
                missing = 0
                for result in client.delete_many([doc.resource for doc in docs]):
                    if result.get("action") == "deleted":
                        typer.echo(render.result_line(result))
                    elif not ignore_not_found:
                        missing += 1
                        typer.echo(f"Error from server (NotFound): {render.result_line(result)}", err=True)
                if missing:
                    raise typer.Exit(1)
                return
            if name is None:
                raise _fail("error: resource name is required: wisp delete KIND NAME")
            kind = kinds.lookup(kind_name or "")
            try:
                client.delete(kind, name, namespace)
            except ApiError as exc:
                if not (ignore_not_found and exc.code == 404):
                    raise
                return
            typer.echo(render.deleted_line(kind, name))

    @app.command()
    def logs(
        ctx: typer.Context,
        service: Annotated[str, typer.Argument(help="The Knative Service whose instances' logs to show.")],
        namespace: NamespaceOpt = "default",
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming new lines.")] = False,
        tail: Annotated[int | None, typer.Option("--tail", help="Lines of recent log to show first.")] = None,
    ) -> None:
        """Print a service's logs, each line prefixed with its instance name."""
        with _reported(), _settings(ctx).client() as client:
            try:
                for chunk in client.logs(service, namespace, follow=follow, tail=tail):
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            except KeyboardInterrupt:
                pass  # Ctrl-C is how a user stops `logs -f`; not an error.

    @app.command()
    def send(
        ctx: typer.Context,
        broker: Annotated[str, typer.Option("--broker", help="The Broker to send to.")],
        event_type: Annotated[str, typer.Option("--type", help="The CloudEvent's type.")],
        source: Annotated[str, typer.Option("--source", help="The CloudEvent's source.")],
        namespace: NamespaceOpt = "default",
        data: Annotated[str | None, typer.Option("--data", help="The event's data (JSON or text).")] = None,
        event_id: Annotated[
            str | None, typer.Option("--id", help="The event's id (default: a UUID).")
        ] = None,
    ) -> None:
        """Send a binary-mode CloudEvent to a broker through wisp's ingress."""
        with _reported(), _settings(ctx).client() as client:
            ingress = str(client.info().get("ingress") or "http://127.0.0.1:8080")
            response = send_event(
                ingress, namespace, broker, event_type=event_type, source=source, data=data, event_id=event_id
            )
        line = f"{response.status_code} {response.reason_phrase}"
        if response.is_success:
            typer.echo(
                f"{line}: event {response.request.headers['ce-id']} sent to broker {namespace}/{broker}"
            )
            return
        raise _fail(f"error: the broker answered {line}", *(response.text.strip().splitlines()[:20]))

    export_commands.register(app)  # wisp export / wisp build: no daemon involved
    @app.command("kubeconfig")
    def kubeconfig_command(
        ctx: typer.Context,
        merge: Annotated[bool, typer.Option("--merge", help="Write the context into $KUBECONFIG's first file "
                                                             "(or ~/.kube/config) instead of printing it.")] = False,
        name: Annotated[str, typer.Option("--name", help="The cluster, user and context name.")] = "wisp",
        namespace: NamespaceOpt = "default",
        use: Annotated[bool, typer.Option("--use/--no-use", help="Make it the current context when merging.")] = True,
    ) -> None:
        """A kubeconfig context for this daemon (with its bearer token when one is set), for kubectl and client
        libraries."""
        settings = _settings(ctx)
        config = kubeconfig.build(settings.api, settings.token, name, namespace)
        if settings.token and settings.api.startswith("http://"):
            typer.echo(kubeconfig.HTTP_TOKEN_WARNING, err=True)
        if not merge:
            typer.echo(kubeconfig.dump(config), nl=False)
            return
        path = kubeconfig.target_path(os.environ, Path.home())
        try:
            merged = kubeconfig.merge(kubeconfig.load(path), config, use_context=use)
            kubeconfig.write_private(path, kubeconfig.dump(merged))
        except (kubeconfig.KubeconfigError, OSError) as exc:
            raise _fail(f"error: {exc}") from None
        typer.echo(f'context "{name}" ({settings.api}) written to {path}'
                   + ("; it is the current context" if use else ""))

    return app


def _print_objects(
    client: ApiClient,
    kind: Kind,
    items: list[Resource],
    scope: str | None,
    now: float,
    output: str | None,
    *,
    single: bool,
) -> None:
    if output in ("json", "yaml"):
        doc = items[0] if single else render.list_object(items)
        typer.echo(render.to_json(doc) if output == "json" else render.to_yaml(doc), nl=False)
        return
    if output == "name":
        for obj in items:
            typer.echo(f"{render.resource_ref(kind)}/{render.name_of(obj)}")
        return
    if not items:
        typer.echo(render.no_resources(scope, kind), err=True)
        return
    traffic = (
        render.revision_traffic(client.list_objects(kinds.SERVICE, scope)) if kind is kinds.REVISION else {}
    )
    tbl = render.table(
        kind, items, render.Context(now, traffic), wide=output == "wide", all_namespaces=scope is None
    )
    typer.echo(render.format_table(tbl), nl=False)


app = make_app()
