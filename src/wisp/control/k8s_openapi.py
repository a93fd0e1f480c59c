"""OpenAPI for `kubectl explain` and `kubectl apply`: `/openapi/v3` (+ one document per group/version) and
`/openapi/v2`, generated from the kinds' schemas (wisp.api.schemas: Knative's CRDs, Kubernetes' core types).

As kube-apiserver publishes CRDs: definitions named by reversed group (`dev.knative.serving.v1.Service`), each
with `x-kubernetes-group-version-kind`, `metadata` a reference to ObjectMeta, and paths whose PATCH lists the
`dryRun` and `fieldValidation` query parameters — kubectl reads those to decide that the server validates
fields and does dry runs, so it neither downloads /openapi/v2 nor validates client side.

kubectl asks /openapi/v2 for protobuf only; wisp answers 406 to a request that does not accept JSON, and
clients fall back to what they do without it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api import schemas
from wisp.api.kinds import Kind
from wisp.control import k8s_crds
from wisp.control.k8s_discovery import KUBERNETES_MINOR, groups, verbs_for

Schema = dict[str, Any]

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"

_LIST_META: Schema = {"type": "object", "description": "Standard list metadata.", "properties": {
    "resourceVersion": {"type": "string"}, "continue": {"type": "string"},
    "remainingItemCount": {"type": "integer", "format": "int64"}}}
_STATUS: Schema = {"type": "object", "description": "Status is a return value for calls that don't return other "
                   "objects.", "properties": {
                       "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "status": {"type": "string"},
                       "message": {"type": "string"}, "reason": {"type": "string"},
                       "code": {"type": "integer", "format": "int32"},
                       "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
_API_VERSION = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                "convert recognized schemas to the latest internal value, and may reject unrecognized values.")
_KIND = ("Kind is a string value representing the REST resource this object represents. Servers may infer this "
         "from the endpoint the client submits requests to. In CamelCase.")
_METADATA = "Standard object's metadata."

# Kubernetes' own core types have no CRD: their descriptions, briefly.
_CORE_DESCRIPTIONS = {
    "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
    "Secret": "Secret holds secret data of a certain type. The total bytes of the values in the Data field must "
              "be less than MaxSecretSize bytes.",
    "Namespace": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
    "Pod": "Pod is a collection of containers that can run on a host. In wisp, one instance of a Revision.",
    "Event": "Event is a report of an event somewhere in the cluster. In wisp, what a reconciler or the "
             "autoscaler did.",
    "PodAutoscaler": "PodAutoscaler is a Knative abstraction that encapsulates the interface by which Knative "
                     "components instantiate autoscalers. In wisp, a Revision's KPA, computed from running state.",
}


def definition_name(kind: Kind, version: str, suffix: str = "") -> str:
    """kube-apiserver's name for a kind's definition: reversed group, version, kind."""
    if kind.group:
        return ".".join([*reversed(kind.group.split(".")), version, kind.kind + suffix])
    return f"io.k8s.api.core.v1.{kind.kind}{suffix}"


def _gvk(kind: Kind, version: str) -> dict[str, str]:
    return {"group": kind.group, "kind": kind.kind, "version": version}


def _object_meta() -> Schema:
    meta = copy.deepcopy(schemas.OBJECT_META)
    meta["description"] = ("ObjectMeta is metadata that all persisted resources must have, which includes all "
                           "objects users must create.")
    return meta


def _computed_schema() -> Schema:
    """Pods, Events and PodAutoscalers are computed: their schema is open beyond the type and object meta."""
    return {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                             "status": {"type": "object",
                                                        "x-kubernetes-preserve-unknown-fields": True}},
            "x-kubernetes-preserve-unknown-fields": True}


def kind_schema(kind: Kind, version: str, ref_prefix: str) -> Schema:
    schema = _computed_schema() if kind.virtual else copy.deepcopy(schemas.schema_for(kind, version))
    schema.setdefault("type", "object")
    if not schema.get("description"):
        schema["description"] = _CORE_DESCRIPTIONS.get(kind.kind, f"{kind.kind} of {kind.group or 'core'}/{version}.")
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "description": _API_VERSION}
    properties["kind"] = {"type": "string", "description": _KIND}
    properties["metadata"] = {"description": _METADATA, "allOf": [{"$ref": ref_prefix + OBJECT_META}]}
    schema["x-kubernetes-group-version-kind"] = [_gvk(kind, version)]
    return schema


def _list_schema(kind: Kind, version: str, ref_prefix: str) -> Schema:
    return {"type": "object", "description": f"{kind.kind}List is a list of {kind.kind}.", "required": ["items"],
            "properties": {"apiVersion": {"type": "string", "description": _API_VERSION},
                           "kind": {"type": "string", "description": _KIND},
                           "metadata": {"allOf": [{"$ref": ref_prefix + LIST_META}]},
                           "items": {"type": "array",
                                     "items": {"$ref": ref_prefix + definition_name(kind, version)}}},
            "x-kubernetes-group-version-kind": [_gvk(kind, version) | {"kind": kind.kind + "List"}]}


# -- paths ---------------------------------------------------------------------------------------------------

def _param(name: str, where: str, description: str, type_: str = "string") -> Schema:
    return {"name": name, "in": where, "description": description, "required": where == "path",
            "schema": {"type": type_, "uniqueItems": True}}


_DRY_RUN = _param("dryRun", "query", "When present, indicates that modifications should not be persisted. "
                  "Valid value: All.")
_FIELD_MANAGER = _param("fieldManager", "query", "a name associated with the actor or entity that is making "
                        "these changes.")
_FIELD_VALIDATION = _param("fieldValidation", "query", "How the server handles an object with unknown or "
                           "duplicate fields: Ignore, Warn or Strict.")
_FORCE = _param("force", "query", "Force is going to \"force\" Apply requests.", "boolean")
_NAME = _param("name", "path", "name of the object")
_NAMESPACE = _param("namespace", "path", "object name and auth scope, such as for teams and projects")
_LIST_PARAMS = [_param("labelSelector", "query", "A selector to restrict the list of returned objects by their "
                       "labels."),
                _param("fieldSelector", "query", "A selector to restrict the list of returned objects by their "
                       "fields."),
                _param("limit", "query", "limit is a maximum number of responses to return for a list call.",
                       "integer"),
                _param("continue", "query", "The continue option should be set when retrieving more results from "
                       "the server."),
                _param("resourceVersion", "query", "resourceVersion sets a constraint on what resource versions "
                       "a request may be served from."),
                _param("watch", "query", "Watch for changes to the described resources.", "boolean")]

_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def _operation(kind: Kind, version: str, action: str, op_id: str, ref_prefix: str, returns: str,
               parameters: list[Schema], body: bool = False, core: bool = False) -> Schema:
    content = {"application/json": {"schema": {"$ref": ref_prefix + returns}}}
    operation: Schema = {
        "description": f"{action} {kind.kind}", "operationId": op_id, "tags": [kind.group or "core_v1"],
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": content},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action, "x-kubernetes-group-version-kind": _gvk(kind, version),
    }
    if body:
        types = (*_PATCH_TYPES, "application/strategic-merge-patch+json") if core else _PATCH_TYPES
        schema = {"$ref": ref_prefix + (PATCH if action == "patch" else definition_name(kind, version))}
        operation["requestBody"] = {"content": {t: {"schema": schema} for t in (
            types if action == "patch" else ("application/json", "application/yaml"))}, "required": True}
    return operation


def _paths(kind: Kind, version: str, ref_prefix: str) -> dict[str, Schema]:
    base = f"/apis/{kind.group}/{version}" if kind.group else f"/api/{version}"
    scope = f"{base}/namespaces/{{namespace}}" if kind.namespaced else base
    scope_params = [_NAMESPACE] if kind.namespaced else []
    verbs = verbs_for(kind)
    name = definition_name(kind, version)
    ident = f"{kind.kind}{version.capitalize()}"
    op = functools.partial(_operation, kind, version, ref_prefix=ref_prefix, core=not kind.group)
    collection: Schema = {"parameters": scope_params}
    collection["get"] = op("list", f"list{ident}", returns=definition_name(kind, version, "List"),
                           parameters=_LIST_PARAMS)
    if "create" in verbs:
        collection["post"] = op("post", f"create{ident}", returns=name,
                                parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=True)
    if "deletecollection" in verbs:
        collection["delete"] = op("deletecollection", f"deleteCollection{ident}", returns=STATUS,
                                  parameters=[_DRY_RUN, *_LIST_PARAMS])
    item: Schema = {"parameters": [_NAME, *scope_params], "get": op("get", f"read{ident}", returns=name,
                                                                    parameters=[])}
    if "update" in verbs:
        item["put"] = op("put", f"replace{ident}", returns=name,
                         parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=True)
    if "patch" in verbs:
        item["patch"] = op("patch", f"patch{ident}", returns=name,
                           parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], body=True)
    if "delete" in verbs:
        item["delete"] = op("delete", f"delete{ident}", returns=STATUS, parameters=[_DRY_RUN])
    out = {f"{scope}/{kind.plural}": collection, f"{scope}/{kind.plural}/{{name}}": item}
    if kind.namespaced:
        out[f"{base}/{kind.plural}"] = {"get": op("list", f"list{ident}ForAllNamespaces",
                                                  returns=definition_name(kind, version, "List"),
                                                  parameters=_LIST_PARAMS)}
    if "status" in k8s_crds.info(kind).subresources:
        out[f"{scope}/{kind.plural}/{{name}}/status"] = {
            "parameters": [_NAME, *scope_params],
            "get": op("get", f"read{ident}Status", returns=name, parameters=[]),
            "put": op("put", f"replace{ident}Status", returns=name,
                      parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=True),
            "patch": op("patch", f"patch{ident}Status", returns=name,
                        parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], body=True),
        }
    return out


# -- documents -----------------------------------------------------------------------------------------------

def _shared_definitions() -> dict[str, Schema]:
    return {OBJECT_META: _object_meta(), LIST_META: _LIST_META, STATUS: _STATUS,
            PATCH: {"type": "object", "description": "Patch is provided to give a concrete name and type to the "
                                                     "Kubernetes PATCH request body."}}


def _served() -> dict[str, dict[str, list[Kind]]]:
    return groups(k.ALL_KINDS)


def group_version_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def v3_document(group: str, version: str) -> Schema | None:
    served = _served().get(group, {}).get(version)
    if not served:
        return None
    prefix = "#/components/schemas/"
    definitions = _shared_definitions()
    paths: dict[str, Schema] = {}
    for kind in served:
        definitions[definition_name(kind, version)] = kind_schema(kind, version, prefix)
        definitions[definition_name(kind, version, "List")] = _list_schema(kind, version, prefix)
        paths.update(_paths(kind, version, prefix))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (wisp)", "version": f"v1.{KUBERNETES_MINOR}.0"},
            "paths": paths, "components": {"schemas": definitions}}


@functools.cache
def _v3_bytes(group: str, version: str) -> tuple[bytes, str] | None:
    document = v3_document(group, version)
    if document is None:
        return None
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, hashlib.sha512(body).hexdigest().upper()


@functools.cache
def v3_root() -> bytes:
    paths: dict[str, Schema] = {}
    for group, versions in _served().items():
        for version in versions:
            found = _v3_bytes(group, version)
            assert found is not None
            key = group_version_key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={found[1]}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


def warm_openapi() -> None:
    """Build (and cache) every document now."""
    v3_root()
    v2_bytes()


def _to_v2(schema: Any) -> Any:
    """A v3 schema → Swagger 2.0: refs into #/definitions; anyOf/oneOf/not/nullable dropped (as kube-apiserver
    publishes CRDs in v2); int-or-string as Kubernetes' IntOrString (a string of format int-or-string)."""
    if isinstance(schema, list):
        return [_to_v2(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("x-kubernetes-int-or-string"):
        return {k_: v for k_, v in schema.items() if k_ not in ("anyOf", "oneOf", "type")} | {
            "type": "string", "format": "int-or-string"}
    out: Schema = {}
    for key, value in schema.items():
        if key in ("anyOf", "oneOf", "not", "nullable"):
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "allOf" and isinstance(value, list) and len(value) == 1 and "$ref" in value[0]:
            out["$ref"] = value[0]["$ref"].replace("#/components/schemas/", "#/definitions/")
        elif key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: _to_v2(sub) for name, sub in value.items()}
        else:
            out[key] = _to_v2(value)
    return out


@functools.cache
def v2_bytes() -> bytes:
    definitions: dict[str, Schema] = {}
    paths: dict[str, Schema] = {}
    for group, versions in _served().items():
        for version in versions:
            document = v3_document(group, version)
            assert document is not None
            definitions.update(document["components"]["schemas"])
            for path, item in document["paths"].items():
                converted: Schema = {}
                for method, operation in item.items():
                    if method == "parameters":
                        converted[method] = [_v2_param(p) for p in operation]
                        continue
                    converted[method] = _v2_operation(operation)
                paths[path] = converted
    document_v2 = {"swagger": "2.0", "info": {"title": "Kubernetes (wisp)", "version": f"v1.{KUBERNETES_MINOR}.0"},
                   "paths": paths, "definitions": _to_v2(definitions)}
    return json.dumps(document_v2, separators=(",", ":")).encode()


def _v2_param(param: Schema) -> Schema:
    out = {k_: v for k_, v in param.items() if k_ != "schema"}
    out["type"] = param.get("schema", {}).get("type", "string")
    out["uniqueItems"] = True
    return out


def _v2_operation(operation: Schema) -> Schema:
    out = {k_: v for k_, v in operation.items() if k_ not in ("requestBody", "responses", "parameters")}
    out["parameters"] = [_v2_param(p) for p in operation.get("parameters", [])]
    body = operation.get("requestBody")
    if body is not None:
        content = body["content"]
        out["consumes"] = list(content)
        first = next(iter(content.values()))
        out["parameters"].append({"name": "body", "in": "body", "required": True, "schema": _to_v2(first["schema"])})
    out["produces"] = ["application/json", "application/yaml"]
    out["responses"] = {code: ({"description": r["description"]} | (
        {"schema": _to_v2(r["content"]["application/json"]["schema"])} if "content" in r else {}))
        for code, r in operation["responses"].items()}
    return out


def _accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


def _not_acceptable(what: str) -> JSONResponse:
    return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotAcceptable",
                         "message": f"{what} is served as application/json only", "code": 406}, status_code=406)


def _json_bytes(body: bytes, etag: str | None = None) -> Response:
    headers = {"Cache-Control": "no-cache, private"}
    if etag:
        headers = {"ETag": f'"{etag}"', "Cache-Control": "public, immutable"}
    return Response(body, media_type="application/json", headers=headers)


def openapi_routes() -> list[Route]:
    async def v2(request: Request) -> Response:
        if not _accepts_json(request.headers.get("accept", "")):
            return _not_acceptable("/openapi/v2")
        return _json_bytes(v2_bytes())

    async def v3(request: Request) -> Response:
        if not _accepts_json(request.headers.get("accept", "")):
            return _not_acceptable("/openapi/v3")
        return _json_bytes(v3_root())

    def _group_version(group: str, version: str, request: Request) -> Response:
        if not _accepts_json(request.headers.get("accept", "")):
            return _not_acceptable("/openapi/v3")
        found = _v3_bytes(group, version)
        if found is None:
            return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound",
                                 "message": "the server could not find the requested resource", "code": 404},
                                status_code=404)
        body, digest = found
        return _json_bytes(body, digest if request.query_params.get("hash") == digest else None)

    async def v3_core(request: Request) -> Response:
        return _group_version("", request.path_params["version"], request)

    async def v3_group(request: Request) -> Response:
        return _group_version(request.path_params["group"], request.path_params["version"], request)

    return [
        Route("/openapi/v2", v2), Route("/openapi/v3", v3), Route("/openapi/v3/", v3),
        Route("/openapi/v3/api/{version}", v3_core),
        Route("/openapi/v3/apis/{group}/{version}", v3_group),
    ]
