"""wisp's user-facing names stay what they are once every module of the package is imported: a subpackage
named like one of them (`wisp/http/`) would silently replace the decorator users write `@wisp.http` with."""

from __future__ import annotations

import importlib
import pkgutil

import wisp

PUBLIC = {name: getattr(wisp, name) for name in wisp.__all__}


def test_no_module_shadows_a_public_name() -> None:
    for module in pkgutil.walk_packages(wisp.__path__, "wisp."):
        importlib.import_module(module.name)
    assert {name: getattr(wisp, name) for name in wisp.__all__} == PUBLIC
    assert callable(wisp.http) and callable(wisp.cloudevent)
