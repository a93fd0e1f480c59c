"""YAML parsing with bounds, so one manifest cannot take the CLI or the daemon down.

PyYAML shares an aliased node between its uses, so a "billion laughs" document is small once parsed but
explodes in whatever walks it later (JSON encoding, deep copies, validation). The loader here measures each
document's node graph as it is composed — nesting depth and the nodes aliases would add when expanded — and
refuses it before anything is constructed. It also yields only JSON's types, as kubectl's YAML → JSON step
does: timestamps stay strings, and the tags with no JSON form (`!!binary`, `!!set`, `!!omap`, `!!pairs`)
are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from wisp.api.shape import MAX_DEPTH

# The Kubernetes API server refuses request bodies over 3 MiB; a manifest file gets the same budget.
MAX_TEXT_BYTES = 3 * 1024 * 1024
MAX_DOCUMENTS = 1000
# Nodes that aliases may add, over all documents of one text, once expanded. Anchors that share an env
# list or a template stay far below; a billion-laughs document asks for 10**9.
MAX_ALIAS_EXPANSION = 10_000


class _Measure:
    """Expanded size and height of composed nodes, each node measured once (the graph is a DAG)."""

    def __init__(self) -> None:
        self.size: dict[int, int] = {}
        self.height: dict[int, int] = {}
        self._open: set[int] = set()

    def visit(self, node: Node, depth: int) -> int:
        key = id(node)
        if key in self.size:
            if depth + self.height[key] - 1 > MAX_DEPTH:
                raise _too_deep(node)
            return self.size[key]
        if depth > MAX_DEPTH:
            raise _too_deep(node)
        if key in self._open:
            raise ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
        self._open.add(key)
        size, height = 1, 1
        for child in _children(node):
            size += self.visit(child, depth + 1)
            height = max(height, 1 + self.height[id(child)])
        self._open.discard(key)
        self.size[key], self.height[key] = size, height
        return size


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _too_deep(node: Node) -> ComposerError:
    return ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", node.start_mark)


def _too_deep_at(event: Any) -> ComposerError:
    return ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader with nesting and alias-expansion bounds, yielding JSON-compatible values only."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._documents = 0
        self._expanded = 0  # nodes aliases added so far, over every document of the text

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # The composer recurses per nesting level: stop before Python's recursion limit does.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _too_deep_at(self.peek_event())  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        self._documents += 1
        if self._documents > MAX_DOCUMENTS:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ComposerError(None, None, f"more than {MAX_DOCUMENTS} documents", mark)
        node: Node | None = super().compose_document()
        if node is not None:
            measure = _Measure()
            expanded = measure.visit(node, 1)
            self._expanded += expanded - len(measure.size)
            if self._expanded > MAX_ALIAS_EXPANSION:
                raise ComposerError(
                    None,
                    None,
                    f"aliases expand to {self._expanded} more nodes, over the limit of {MAX_ALIAS_EXPANSION}",
                    node.start_mark,
                )
        return node


def _timestamp_as_text(loader: yaml.SafeLoader, node: Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _refuse(loader: yaml.SafeLoader, node: Node) -> Any:
    raise ConstructorError(None, None, f"the YAML tag {node.tag} has no JSON form; not supported", node.start_mark)


BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    BoundedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def load_all(text: str) -> list[Any]:
    """Every document of a YAML text; yaml.YAMLError (with a mark where known) for malformed or unbounded input."""
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise yaml.YAMLError(f"manifest is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB")
    loader = BoundedLoader(text)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()
