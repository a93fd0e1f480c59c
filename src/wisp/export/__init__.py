"""From one machine to a Knative cluster: manifests in the versions Knative serves and a build context per
local code directory (`wisp export`), built into images by the machine's container engine (`wisp build`).

Everything here reads `wisp.api` only: the exported manifests are checked against the vendored Knative CRDs
and Kubernetes' core types before a file is written (docs/production.md).
"""
