"""Turn Kubernetes-shaped objects into what `kubectl`/`kn` print: tables, describe pages, apply lines.

Every function here is pure (time comes in as `now`) so the CLI's output is tested table-driven.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from wisp.api import kinds
from wisp.api.errors import UnknownKindError
from wisp.api.kinds import Kind
from wisp.api.names import CONFIGURATION_GENERATION_LABEL, IN_FLIGHT_ANNOTATION, REVISION_LABEL, SERVICE_LABEL
from wisp.api.timestamps import human_duration, parse_timestamp
from wisp.types import Resource

# -- small accessors ---------------------------------------------------------------------------------------


def dig(obj: Any, *path: str | int) -> Any:
    """obj[p0][p1]... or None when any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        else:
            if not isinstance(obj, Mapping):
                return None
            obj = obj.get(step)
    return obj


def text(value: Any) -> str:
    return "" if value is None else str(value)


def name_of(obj: Resource) -> str:
    return text(dig(obj, "metadata", "name"))


def namespace_of(obj: Resource) -> str:
    return text(dig(obj, "metadata", "namespace"))


def age(obj: Resource, now: float) -> str:
    created = parse_timestamp(dig(obj, "metadata", "creationTimestamp"))
    return "<unknown>" if created is None else human_duration(now - created)


def conditions(obj: Resource) -> list[Mapping[str, Any]]:
    found = dig(obj, "status", "conditions")
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def condition(obj: Resource, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions(obj) if c.get("type") == type_), None)


def ready_status(obj: Resource) -> str:
    """The Ready (or Succeeded) condition's status, `<unknown>` when there is none (as kn prints it)."""
    cond = condition(obj, "Ready") or condition(obj, "Succeeded")
    return text(cond.get("status")) if cond else "<unknown>"


def ready_reason(obj: Resource) -> str:
    cond = condition(obj, "Ready") or condition(obj, "Succeeded")
    return text(cond.get("reason")) if cond else ""


def conditions_summary(obj: Resource) -> str:
    """kn's CONDITIONS column: `3 OK / 4`."""
    found = conditions(obj)
    ok = sum(1 for c in found if c.get("status") == "True")
    return f"{ok} OK / {len(found)}"


def join(values: Any) -> str:
    """A list as `a,b`; a comma-separated string (KafkaSource v1alpha1) as is."""
    if isinstance(values, list):
        return ",".join(text(v) for v in values)
    return text(values)


def sink_text(sink: Any) -> str:
    """A Destination as kn prints it: `ksvc:hello`, `broker:default`, a URI, or ref + uri."""
    if not isinstance(sink, Mapping):
        return ""
    ref = sink.get("ref")
    uri = text(sink.get("uri"))
    if isinstance(ref, Mapping):
        kind = text(ref.get("kind"))
        prefix = (
            "ksvc"
            if kind == "Service" and "serving.knative.dev" in text(ref.get("apiVersion"))
            else kind.lower()
        )
        out = f"{prefix}:{text(ref.get('name'))}"
        return f"{out}{uri}" if uri else out
    return uri


def subject_text(subject: Any) -> str:
    """A SinkBinding subject as kn prints it: `kind:apiVersion:name` or `kind:apiVersion:key=value`."""
    if not isinstance(subject, Mapping):
        return ""
    head = f"{text(subject.get('kind')).lower()}:{text(subject.get('apiVersion'))}"
    if subject.get("name"):
        return f"{head}:{subject['name']}"
    labels = dig(subject, "selector", "matchLabels")
    if isinstance(labels, Mapping):
        return f"{head}:" + ",".join(f"{k}={v}" for k, v in labels.items())
    return head


# -- tables ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Context:
    """What a row needs besides its object: the clock, and services' traffic for revisions."""

    now: float
    # (namespace, revision) → (percent of its service's traffic, tags)
    traffic: Mapping[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)


Cell = Callable[[Resource, Context], str]


def _ready(o: Resource, _: Context) -> str:
    return ready_status(o)


def _reason(o: Resource, _: Context) -> str:
    return ready_reason(o)


def _age(o: Resource, ctx: Context) -> str:
    return age(o, ctx.now)


def _conds(o: Resource, _: Context) -> str:
    return conditions_summary(o)


def _field(*path: str | int) -> Cell:
    return lambda o, _: text(dig(o, *path))


def _traffic(o: Resource, ctx: Context) -> str:
    entry = ctx.traffic.get((namespace_of(o), name_of(o)))
    return f"{entry[0]}%" if entry and entry[0] else ""


def _tags(o: Resource, ctx: Context) -> str:
    entry = ctx.traffic.get((namespace_of(o), name_of(o)))
    return ",".join(entry[1]) if entry else ""


def _pod_ready(o: Resource, _: Context) -> str:
    statuses = dig(o, "status", "containerStatuses")
    if not isinstance(statuses, list) or not statuses:
        return "0/1"
    ready = sum(1 for s in statuses if isinstance(s, Mapping) and s.get("ready"))
    return f"{ready}/{len(statuses)}"


def _pod_status(o: Resource, _: Context) -> str:
    # kubectl shows a waiting/terminated container's reason (CrashLoopBackOff, ...) before the phase.
    for state in ("waiting", "terminated"):
        reason = dig(o, "status", "containerStatuses", 0, "state", state, "reason")
        if reason:
            return text(reason)
    return text(dig(o, "status", "phase")) or "Unknown"


def _pod_restarts(o: Resource, _: Context) -> str:
    statuses = dig(o, "status", "containerStatuses")
    if not isinstance(statuses, list):
        return "0"
    return str(sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, Mapping)))


def _in_flight(o: Resource, _: Context) -> str:
    return text(dig(o, "metadata", "annotations", IN_FLIGHT_ANNOTATION)) or "0"


def _data_count(*keys: str) -> Cell:
    def count(o: Resource, _: Context) -> str:
        return str(sum(len(o.get(k) or {}) for k in keys))

    return count


Columns = list[tuple[str, Cell]]

_NAME: Columns = [("NAME", lambda o, _: name_of(o))]

COLUMNS: dict[str, Columns] = {
    "Service": [
        *_NAME,
        ("URL", _field("status", "url")),
        ("LATEST", _field("status", "latestReadyRevisionName")),
        ("AGE", _age),
        ("CONDITIONS", _conds),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Revision": [
        *_NAME,
        ("SERVICE", _field("metadata", "labels", SERVICE_LABEL)),
        ("TRAFFIC", _traffic),
        ("TAGS", _tags),
        ("GENERATION", _field("metadata", "labels", CONFIGURATION_GENERATION_LABEL)),
        ("AGE", _age),
        ("CONDITIONS", _conds),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Route": [
        *_NAME,
        ("URL", _field("status", "url")),
        ("AGE", _age),
        ("CONDITIONS", _conds),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Configuration": [
        *_NAME,
        ("LATESTCREATED", _field("status", "latestCreatedRevisionName")),
        ("LATESTREADY", _field("status", "latestReadyRevisionName")),
        ("AGE", _age),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "DomainMapping": [
        *_NAME,
        ("URL", _field("status", "url")),
        ("READY", _ready),
        ("KSVC", _field("spec", "ref", "name")),
        ("REASON", _reason),
    ],
    "Pod": [
        *_NAME,
        ("READY", _pod_ready),
        ("STATUS", _pod_status),
        ("RESTARTS", _pod_restarts),
        ("AGE", _age),
        ("INFLIGHT", _in_flight),
    ],
    "PodAutoscaler": [
        *_NAME,
        ("DESIREDSCALE", _field("status", "desiredScale")),
        ("ACTUALSCALE", _field("status", "actualScale")),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "KafkaSource": [
        *_NAME,
        ("TOPICS", lambda o, _: join(dig(o, "spec", "topics"))),
        ("BOOTSTRAPSERVERS", lambda o, _: join(dig(o, "spec", "bootstrapServers"))),
        ("READY", _ready),
        ("REASON", _reason),
        ("AGE", _age),
    ],
    "PingSource": [
        *_NAME,
        ("SCHEDULE", _field("spec", "schedule")),
        ("SINK", lambda o, _: sink_text(dig(o, "spec", "sink"))),
        ("AGE", _age),
        ("CONDITIONS", _conds),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "SinkBinding": [
        *_NAME,
        ("SUBJECT", lambda o, _: subject_text(dig(o, "spec", "subject"))),
        ("SINK", lambda o, _: sink_text(dig(o, "spec", "sink"))),
        ("AGE", _age),
        ("CONDITIONS", _conds),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Broker": [
        *_NAME,
        ("URL", _field("status", "address", "url")),
        ("AGE", _age),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Trigger": [
        *_NAME,
        ("BROKER", _field("spec", "broker")),
        ("SUBSCRIBER_URI", _field("status", "subscriberUri")),
        ("AGE", _age),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    # Channels, flows, sinks and sources: the printer columns of Knative's CRDs.
    **{kind: [*_NAME, ("URL", _field("status", "address", "url")), ("AGE", _age), ("READY", _ready),
              ("REASON", _reason)]
       for kind in ("InMemoryChannel", "Channel", "KafkaChannel", "Sequence", "Parallel", "JobSink")},
    "Subscription": [*_NAME, ("AGE", _age), ("READY", _ready), ("REASON", _reason)],
    **{kind: [*_NAME, ("SINK", _field("status", "sinkUri")), ("AGE", _age), ("READY", _ready),
              ("REASON", _reason)]
       for kind in ("ContainerSource", "ApiServerSource")},
    "EventType": [
        *_NAME,
        ("TYPE", lambda o, _: _attribute(o, "type")),
        ("SOURCE", lambda o, _: _attribute(o, "source")),
        ("REFERENCE NAME", _field("spec", "reference", "name")),
        ("REFERENCE KIND", _field("spec", "reference", "kind")),
        ("DESCRIPTION", _field("spec", "description")),
        ("READY", _ready),
        ("REASON", _reason),
    ],
    "Secret": [
        *_NAME,
        ("TYPE", lambda o, _: text(o.get("type")) or "Opaque"),
        ("DATA", _data_count("data", "stringData")),
        ("AGE", _age),
    ],
    "ConfigMap": [*_NAME, ("DATA", _data_count("data", "binaryData")), ("AGE", _age)],
    "Namespace": [
        *_NAME,
        ("STATUS", lambda o, _: text(dig(o, "status", "phase")) or "Active"),
        ("AGE", _age),
    ],
}

def _attribute(event_type: Resource, name: str) -> str:
    """An EventType attribute's value (`spec.attributes[?(@.name==name)].value`)."""
    for attribute in dig(event_type, "spec", "attributes") or []:
        if isinstance(attribute, dict) and attribute.get("name") == name:
            return text(attribute.get("value"))
    return ""


WIDE_COLUMNS: dict[str, Columns] = {
    "Service": [("TRAFFIC", lambda o, _: traffic_text(o))],
    "Revision": [("IMAGE", _field("spec", "containers", 0, "image"))],
    "Pod": [
        ("SERVICE", _field("metadata", "labels", SERVICE_LABEL)),
        ("REVISION", _field("metadata", "labels", REVISION_LABEL)),
    ],
    "PodAutoscaler": [("SERVICE", _field("metadata", "labels", SERVICE_LABEL))],
    "Trigger": [
        ("SUBSCRIBER", lambda o, _: sink_text(dig(o, "spec", "subscriber"))),
        ("FILTER", lambda o, _: filter_text(o)),
    ],
    "KafkaSource": [("SINK", lambda o, _: sink_text(dig(o, "spec", "sink")))],
}

GENERIC: Columns = [*_NAME, ("READY", _ready), ("REASON", _reason), ("AGE", _age)]


def traffic_text(service: Resource) -> str:
    """A service's traffic split on one line: `90% hello-00002,10% @latest #canary`."""
    parts = []
    for target in dig(service, "status", "traffic") or dig(service, "spec", "traffic") or []:
        if not isinstance(target, Mapping):
            continue
        name = (
            "@latest"
            if target.get("latestRevision") and not target.get("revisionName")
            else text(target.get("revisionName"))
        )
        tag = f" #{target['tag']}" if target.get("tag") else ""
        parts.append(f"{target.get('percent') or 0}% {name}{tag}")
    return ",".join(parts)


def filter_text(trigger: Resource) -> str:
    attributes = dig(trigger, "spec", "filter", "attributes")
    if isinstance(attributes, Mapping):
        return ",".join(f"{k}={v}" for k, v in attributes.items())
    return "filters" if dig(trigger, "spec", "filters") else ""


def revision_traffic(services: Iterable[Resource]) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """(namespace, revision) → (percent of its service's traffic, tags), from services' status.traffic."""
    out: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for service in services:
        for target in dig(service, "status", "traffic") or []:
            if not isinstance(target, Mapping) or not target.get("revisionName"):
                continue
            key = (namespace_of(service), str(target["revisionName"]))
            percent, tags = out.get(key, (0, []))
            if target.get("tag"):
                tags = [*tags, str(target["tag"])]
            out[key] = (percent + int(target.get("percent") or 0), tags)
    return out


def _revision_sort_key(revision: Resource) -> tuple[str, str, int]:
    generation = text(dig(revision, "metadata", "labels", CONFIGURATION_GENERATION_LABEL))
    # kn lists a service's newest revision first.
    return (
        namespace_of(revision),
        text(dig(revision, "metadata", "labels", SERVICE_LABEL)),
        -int(generation) if generation.isdigit() else 0,
    )


def table(
    kind: Kind,
    items: Sequence[Resource],
    ctx: Context,
    *,
    wide: bool = False,
    all_namespaces: bool = False,
) -> Table:
    """The rows `wisp get` prints for `items` of `kind`."""
    columns = list(COLUMNS.get(kind.kind, GENERIC))
    if wide:
        columns += WIDE_COLUMNS.get(kind.kind, [])
    if all_namespaces and kind.namespaced:
        columns.insert(0, ("NAMESPACE", lambda o, _: namespace_of(o)))
    ordered = sorted(items, key=_revision_sort_key) if kind.kind == "Revision" else list(items)
    return Table(
        headers=[header for header, _ in columns],
        rows=[[cell(obj, ctx) for _, cell in columns] for obj in ordered],
    )


def format_table(tbl: Table, padding: int = 3) -> str:
    """Left-aligned columns separated by `padding` spaces, like kubectl's tabwriter."""
    widths = [len(h) for h in tbl.headers]
    for row in tbl.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [tbl.headers, *tbl.rows]:
        line = (" " * padding).join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def no_resources(namespace: str | None, kind: Kind) -> str:
    if namespace is None or not kind.namespaced:
        return "No resources found"
    return f"No resources found in {namespace} namespace."


# -- references and apply output ---------------------------------------------------------------------------


def resource_ref(kind: Kind) -> str:
    """kubectl's `{singular}.{group}` spelling: `service.serving.knative.dev`, `secret`."""
    return f"{kind.kind.lower()}.{kind.group}" if kind.group else kind.kind.lower()


def _kind_for(kind_name: str) -> Kind | None:
    try:
        return kinds.lookup(kind_name)
    except UnknownKindError:
        return None


def result_line(result: Mapping[str, Any]) -> str:
    """One apply/delete result as kubectl prints it: `service.serving.knative.dev/hello created`."""
    kind = _kind_for(text(result.get("kind")))
    ref = resource_ref(kind) if kind else text(result.get("kind")).lower()
    return f"{ref}/{text(result.get('name'))} {text(result.get('action'))}"


def deleted_line(kind: Kind, name: str) -> str:
    return f'{resource_ref(kind)} "{name}" deleted'


def status_error_lines(reason: str, message: str, causes: Sequence[tuple[str, str]]) -> list[str]:
    """`Error from server (Invalid): ...` followed by one line per cause, each naming its field."""
    lines = [f"Error from server ({reason}): {message}" if message else f"Error from server ({reason})"]
    for field_path, cause in causes:
        lines.append(f"  {field_path}: {cause}" if field_path else f"  {cause}")
    return lines


# -- output formats ----------------------------------------------------------------------------------------


def list_object(items: Sequence[Resource]) -> Resource:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=False) + "\n"


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


# -- describe ----------------------------------------------------------------------------------------------


def _pairs(pairs: Sequence[tuple[str, str]], indent: int = 0) -> list[str]:
    if not pairs:
        return []
    width = max(len(key) for key, _ in pairs) + 2
    # An empty key continues the previous key's value on a new line.
    return [(" " * indent + (f"{key}:" if key else "").ljust(width) + value).rstrip() for key, value in pairs]


def _mapping_text(value: Any) -> list[str]:
    if not isinstance(value, Mapping) or not value:
        return ["<none>"]
    return [f"{k}={v}" for k, v in sorted(value.items())]


def _multiline(label: str, values: list[str]) -> list[tuple[str, str]]:
    return [(label, values[0]), *(("", v) for v in values[1:])]


def _indented_yaml(value: Any, indent: int = 2) -> list[str]:
    return [" " * indent + line for line in to_yaml(value).rstrip("\n").splitlines()]


def _env_text(env: Mapping[str, Any]) -> str:
    name = text(env.get("name"))
    if "value" in env:
        return f"{name}={text(env.get('value'))}"
    source = env.get("valueFrom")
    for ref_kind in ("secretKeyRef", "configMapKeyRef"):
        ref = dig(source, ref_kind)
        if isinstance(ref, Mapping):
            label = "secret" if ref_kind == "secretKeyRef" else "configmap"
            return f"{name}=<{label} {text(ref.get('name'))}/{text(ref.get('key'))}>"
    return f"{name}=<from {', '.join(source) if isinstance(source, Mapping) else '?'}>"


def _env_from_text(source: Mapping[str, Any]) -> str:
    if "secretRef" in source:
        return f"secret {text(dig(source, 'secretRef', 'name'))}"
    return f"configmap {text(dig(source, 'configMapRef', 'name'))}"


def _pod_spec_lines(spec: Mapping[str, Any], annotations: Any) -> list[str]:
    """Key facts of a revision spec: containers (image, port, env), concurrency, timeout, autoscaling."""
    lines: list[str] = []
    for container in spec.get("containers") or []:
        if not isinstance(container, Mapping):
            continue
        pairs = [("Image", text(container.get("image")))]
        if container.get("name"):
            pairs.insert(0, ("Container", text(container.get("name"))))
        ports = [text(p.get("containerPort")) for p in container.get("ports") or [] if isinstance(p, Mapping)]
        if ports:
            pairs.append(("Port", ",".join(ports)))
        for key in ("command", "args"):
            if container.get(key):
                pairs.append((key.capitalize(), " ".join(text(a) for a in container[key])))
        env = [_env_text(e) for e in container.get("env") or [] if isinstance(e, Mapping)]
        if env:
            pairs += _multiline("Env", env)
        env_from = [_env_from_text(e) for e in container.get("envFrom") or [] if isinstance(e, Mapping)]
        if env_from:
            pairs += _multiline("EnvFrom", env_from)
        lines += _pairs(pairs, indent=2)
    extra = []
    for key, label in (("containerConcurrency", "Concurrency"), ("timeoutSeconds", "Timeout")):
        if spec.get(key) is not None:
            extra.append((label, f"{spec[key]}s" if key == "timeoutSeconds" else text(spec[key])))
    if isinstance(annotations, Mapping):
        scaling = [
            f"{k}={v}"
            for k, v in sorted(annotations.items())
            if k.startswith(("autoscaling.knative.dev/", "wisp.dev/", "workload.serving"))
        ]
        if scaling:
            extra += _multiline("Annotations", scaling)
    return lines + _pairs(extra, indent=2)


def _revisions_lines(service: Resource, revisions: Sequence[Resource], ctx: Context) -> list[str]:
    mine = [r for r in revisions if dig(r, "metadata", "labels", SERVICE_LABEL) == name_of(service)]
    if not mine:
        return []
    rev_table = table(kinds.REVISION, mine, ctx)
    keep = [i for i, h in enumerate(rev_table.headers) if h not in ("SERVICE", "CONDITIONS")]
    trimmed = Table([rev_table.headers[i] for i in keep], [[row[i] for i in keep] for row in rev_table.rows])
    return ["", "Revisions:", *("  " + line for line in format_table(trimmed).rstrip("\n").splitlines())]


def _traffic_lines(service: Resource) -> list[str]:
    targets = [t for t in dig(service, "status", "traffic") or [] if isinstance(t, Mapping)]
    if not targets:
        return []
    rows = []
    for target in targets:
        latest = "@latest " if target.get("latestRevision") else ""
        rows.append(
            [
                f"{target.get('percent') or 0}%",
                f"{latest}{text(target.get('revisionName'))}".strip(),
                f"#{target['tag']}" if target.get("tag") else "",
                text(target.get("url")),
            ]
        )
    out = format_table(Table(["PERCENT", "REVISION", "TAG", "URL"], rows))
    return ["", "Traffic:", *("  " + line for line in out.rstrip("\n").splitlines())]


def condition_symbol(cond: Mapping[str, Any]) -> str:
    """kn's marks: `++` true, `!!` false (error), ` W` false warning, ` I` false info, `??` unknown."""
    status = cond.get("status")
    if status == "True":
        return "++"
    if status == "False":
        severity = cond.get("severity")
        return " W" if severity == "Warning" else " I" if severity == "Info" else "!!"
    return "??"


def conditions_lines(obj: Resource, now: float) -> list[str]:
    found = conditions(obj)
    if not found:
        return ["", "Conditions:", "  <none>"]
    rows = []
    for cond in found:
        when = parse_timestamp(cond.get("lastTransitionTime"))
        rows.append(
            [
                condition_symbol(cond),
                text(cond.get("type")),
                "" if when is None else human_duration(now - when),
                text(cond.get("reason")),
                text(cond.get("message")),
            ]
        )
    out = format_table(Table(["OK", "TYPE", "AGE", "REASON", "MESSAGE"], rows), padding=2)
    return ["", "Conditions:", *("  " + line for line in out.rstrip("\n").splitlines())]


def describe(kind: Kind, obj: Resource, ctx: Context, revisions: Sequence[Resource] = ()) -> str:
    """A readable page about one object: metadata, key spec, status, conditions (and a ksvc's revisions)."""
    meta = obj.get("metadata") or {}
    pairs: list[tuple[str, str]] = [("Name", name_of(obj))]
    if kind.namespaced:
        pairs.append(("Namespace", namespace_of(obj)))
    pairs.append(("Kind", f"{kind.kind} ({text(obj.get('apiVersion')) or kind.api_version})"))
    pairs += _multiline("Labels", _mapping_text(meta.get("labels")))
    pairs += _multiline("Annotations", _mapping_text(meta.get("annotations")))
    pairs.append(("Age", age(obj, ctx.now)))
    for label, path in (
        ("URL", ("status", "url")),
        ("Address", ("status", "address", "url")),
        ("Latest", ("status", "latestReadyRevisionName")),
        ("Subscriber URI", ("status", "subscriberUri")),
    ):
        value = dig(obj, *path)
        if value:
            pairs.append((label, text(value)))
    lines = _pairs(pairs)
    lines += _kind_lines(kind, obj)
    if kind.kind == "Service":
        lines += _traffic_lines(obj)
        lines += _revisions_lines(obj, revisions, ctx)
    if kind.kind not in ("Secret", "ConfigMap", "Namespace"):
        lines += conditions_lines(obj, ctx.now)
    return "\n".join(lines) + "\n"


def _kind_lines(kind: Kind, obj: Resource) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    if kind.kind in ("Service", "Configuration"):
        template = spec.get("template") or {}
        return [
            "",
            "Template:",
            *_pod_spec_lines(template.get("spec") or {}, dig(template, "metadata", "annotations")),
        ]
    if kind.kind == "Revision":
        return ["", "Spec:", *_pod_spec_lines(spec, dig(obj, "metadata", "annotations"))]
    if kind.kind == "Secret":
        # Values never leave the daemon unredacted; print key names only, as a precaution anyway.
        keys = sorted({*(obj.get("data") or {}), *(obj.get("stringData") or {})})
        return [
            "",
            *_pairs([("Type", text(obj.get("type")) or "Opaque")]),
            "",
            "Data:",
            *(f"  {key}" for key in keys or ["<none>"]),
        ]
    if kind.kind == "ConfigMap":
        data = obj.get("data") or {}
        return ["", "Data:", *(_indented_yaml(dict(data)) if data else ["  <none>"])]
    if kind.kind == "Pod":
        return [
            "",
            *_pairs(
                [
                    ("Service", text(dig(obj, "metadata", "labels", SERVICE_LABEL))),
                    ("Revision", text(dig(obj, "metadata", "labels", REVISION_LABEL))),
                    ("Status", _pod_status(obj, Context(0.0))),
                    ("Ready", _pod_ready(obj, Context(0.0))),
                    ("Restarts", _pod_restarts(obj, Context(0.0))),
                    ("In-flight", _in_flight(obj, Context(0.0))),
                ]
            ),
        ]
    if kind.kind == "PodAutoscaler":
        return [
            "",
            *_pairs(
                [
                    ("Desired scale", text(dig(obj, "status", "desiredScale"))),
                    ("Actual scale", text(dig(obj, "status", "actualScale"))),
                ]
            ),
        ]
    if spec:
        return ["", "Spec:", *_indented_yaml(dict(spec))]
    return []
