"""Kubernetes API discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`.

Both forms kubectl knows: the aggregated one (apidiscovery.k8s.io/v2, one request for every group, sent when
the Accept header asks for `as=APIGroupDiscoveryList`) and the legacy APIVersions / APIGroupList /
APIResourceList documents that older clients and the Python `kubernetes` client read. Names, categories and
subresources come from Knative's CRDs (k8s_crds); verbs are what wisp's API answers for each kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control import k8s_crds

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBERNETES_MINOR = 32  # the API server release whose behaviour wisp's subset follows (kubectl's skew check)

STORED_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
COMPUTED_VERBS = ("get", "list")  # pods and podautoscalers: computed from running state
EVENT_VERBS = ("get", "list", "watch")  # recorded by wisp, read-only
STATUS_VERBS = ("get", "patch", "update")


def verbs_for(kind: Kind) -> tuple[str, ...]:
    if kind is k.EVENT:
        return EVENT_VERBS
    if kind.virtual:
        return COMPUTED_VERBS
    return NAMESPACE_VERBS if kind is k.NAMESPACE else STORED_VERBS


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order as a sort key: GA before beta before alpha, higher numbers first, then others."""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -int(major), -int(minor or 0), "")


def groups(served: Iterable[Kind] = k.ALL_KINDS) -> dict[str, dict[str, list[Kind]]]:
    """group → version (in Kubernetes' preference order) → the kinds served there."""
    out: dict[str, dict[str, list[Kind]]] = {}
    for kind in served:
        for version in kind.versions:
            out.setdefault(kind.group, {}).setdefault(version, []).append(kind)
    return {group: dict(sorted(versions.items(), key=lambda item: version_priority(item[0])))
            for group, versions in out.items()}


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def api_resource_list(group: str, version: str, served: list[Kind]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in served:
        info = k8s_crds.info(kind)
        entry: dict[str, Any] = {"name": kind.plural, "singularName": info.singular, "namespaced": kind.namespaced,
                                 "kind": kind.kind, "verbs": list(verbs_for(kind))}
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        for sub in info.subresources:
            resources.append({"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                              "kind": kind.kind, "verbs": ["get"] if sub == "log" else list(STATUS_VERBS)})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _group_version(group, version),
            "resources": resources}


def _api_group(group: str, versions: dict[str, list[Kind]]) -> dict[str, Any]:
    listed = [{"groupVersion": _group_version(group, v), "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def _discovery_resource(kind: Kind, version: str) -> dict[str, Any]:
    info = k8s_crds.info(kind)
    response_kind = {"group": kind.group, "version": version, "kind": kind.kind}
    entry: dict[str, Any] = {"resource": kind.plural, "responseKind": response_kind,
                             "scope": "Namespaced" if kind.namespaced else "Cluster",
                             "singularResource": info.singular, "verbs": list(verbs_for(kind))}
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [
            {"subresource": sub, "responseKind": response_kind,
             "verbs": ["get"] if sub == "log" else list(STATUS_VERBS)} for sub in info.subresources]
    return entry


def aggregated(group_map: dict[str, dict[str, list[Kind]]]) -> dict[str, Any]:
    items = [
        {"metadata": {"name": group, "creationTimestamp": None},
         "versions": [{"version": version, "freshness": "Current",
                       "resources": [_discovery_resource(kind, version) for kind in served]}
                      for version, served in versions.items()]}
        for group, versions in group_map.items()
    ]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


def wants_aggregated(accept: str) -> bool:
    """True when the Accept header lists apidiscovery.k8s.io/v2 (client-go lists it first, then JSON)."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if (params.get("g"), params.get("v"), params.get("as")) == ("apidiscovery.k8s.io", "v2",
                                                                    "APIGroupDiscoveryList"):
            return True
    return False


def version_info(wisp_version: str) -> dict[str, str]:
    return {"major": "1", "minor": str(KUBERNETES_MINOR),
            "gitVersion": f"v1.{KUBERNETES_MINOR}.0+wisp-{wisp_version}", "gitCommit": "", "gitTreeState": "",
            "buildDate": "", "goVersion": "", "compiler": "wisp", "platform": "linux/amd64"}


def _not_found() -> JSONResponse:
    return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound",
                         "message": "the server could not find the requested resource", "code": 404},
                        status_code=404)


def discovery_routes(wisp_version: str, served: Iterable[Kind] = k.ALL_KINDS) -> list[Route]:
    group_map = groups(served)
    named = {g: v for g, v in group_map.items() if g}
    core = {"": group_map.get("", {})}
    # Built once: discovery is asked on every kubectl command.
    aggregated_core, aggregated_named = aggregated(core), aggregated(named)
    legacy_groups = {"kind": "APIGroupList", "apiVersion": "v1",
                     "groups": [_api_group(g, v) for g, v in named.items()]}
    legacy_core = {"kind": "APIVersions", "versions": list(core[""]),
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}

    def _answer(request: Request, aggregated_doc: dict[str, Any], legacy: dict[str, Any]) -> Response:
        if wants_aggregated(request.headers.get("accept", "")):
            return JSONResponse(aggregated_doc, media_type=AGGREGATED_TYPE)
        return JSONResponse(legacy)

    async def version(request: Request) -> Response:
        return JSONResponse(version_info(wisp_version))

    async def api_root(request: Request) -> Response:
        return _answer(request, aggregated_core, legacy_core)

    async def apis_root(request: Request) -> Response:
        return _answer(request, aggregated_named, legacy_groups)

    async def core_version(request: Request) -> Response:
        wanted = request.path_params["version"]
        if wanted not in core[""]:
            return _not_found()
        return JSONResponse(api_resource_list("", wanted, core[""][wanted]))

    async def group(request: Request) -> Response:
        name = request.path_params["group"]
        if name not in named:
            return _not_found()
        return JSONResponse({"kind": "APIGroup", "apiVersion": "v1", **_api_group(name, named[name])})

    async def group_version(request: Request) -> Response:
        name, wanted = request.path_params["group"], request.path_params["version"]
        if wanted not in named.get(name, {}):
            return _not_found()
        return JSONResponse(api_resource_list(name, wanted, named[name][wanted]))

    return [
        Route("/version", version), Route("/version/", version),
        Route("/api", api_root), Route("/api/", api_root),
        Route("/apis", apis_root), Route("/apis/", apis_root),
        Route("/api/{version}", core_version),
        Route("/apis/{group}", group),
        Route("/apis/{group}/{version}", group_version),
    ]
