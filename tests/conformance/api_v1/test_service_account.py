"""knative/serving test/conformance/api/v1/service_account_test.go: an invalid serviceAccountName is refused at
create, naming the field and the DNS-1123 subdomain rule."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.api_v1.kube import Kube, path, text_service
from tests.conformance.conftest import Target, conformance_daemon

INVALID = "foo@bar.baz"


async def test_service_account_validation(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        body = text_service("sa", target, "one", spec={"serviceAccountName": INVALID})
        refused = await kube.create(body)
        assert refused.status_code == 422, refused.text
        message = refused.json()["message"]
        # Knative words it "invalid value: foo@bar.baz: spec.template.spec.serviceAccountName" and the rule on
        # the next line; wisp's errors put the field path first (docs/conformance.md).
        assert f"spec.template.spec.serviceAccountName: invalid value: {INVALID}" in message, message
        assert "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters" in message, message
        assert (await kube.client.get(kube.h.api + path("Service", "sa"))).status_code == 404
