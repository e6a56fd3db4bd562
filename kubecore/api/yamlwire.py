"""YAML request bodies, decoded within the limits go-yaml sets for kube-apiserver.

kube-apiserver reads YAML through sigs.k8s.io/yaml and go-yaml, which stop two attacks
before they cost anything; PyYAML stops neither, so this module does:

- nesting: go-yaml refuses documents nested deeper than 10,000 levels ("exceeded max depth
  of 10000"); PyYAML's composer recurses per level and would exhaust Python's stack, so
  the depth is counted while composing and bounded by `jsonwire.MAX_DEPTH`, as JSON is.
- aliases: a few hundred bytes of anchors that alias each other ("billion laughs") expand
  into gigabytes once the value is copied or encoded. go-yaml counts the nodes it decodes
  and how many of them came from alias expansion, and fails with "document contains
  excessive aliasing" when that share exceeds `allowed_alias_ratio`. The same counts are
  taken here on the composed node graph, before anything is expanded; an anchor whose value
  contains its own alias is refused as go-yaml refuses it.

The expanded depth (an alias of a deep value inside another) is bounded too.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from kubecore.api.jsonwire import MAX_DEPTH

# go-yaml's decode.go: from 400,000 decodes to 4,000,000 the share allowed to come from
# alias expansion falls from 99% to 10%.
ALIAS_RATIO_RANGE_LOW = 400_000
ALIAS_RATIO_RANGE_HIGH = 4_000_000


class YAMLLimitError(yaml.YAMLError):
    """A document over one of go-yaml's limits; the message is go-yaml's."""


def allowed_alias_ratio(decode_count: int) -> float:
    if decode_count <= ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    span = ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW
    return 0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) / span)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts how deep collections nest."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.nesting = 0
        self.named: dict[str, Node] = {}  # the document's anchors (the composer forgets them)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        node: Node | None = super().compose_node(parent, index)
        self.named.update(self.anchors)
        return node

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise YAMLLimitError(f"yaml: exceeded max depth of {MAX_DEPTH}")

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self.nesting -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self.nesting -= 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _expanded(root: Node, anchors: dict[str, Node]) -> dict[int, tuple[int, int]]:
    """For every node reachable from `root`: (how many nodes it is once every alias in it is
    expanded, how deep its collections nest then). Iterative post-order; a node reached
    again while its own children are being counted is an anchor containing itself."""
    done: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            sizes = [done[id(c)] for c in _children(node)]
            nests = isinstance(node, (SequenceNode, MappingNode))
            done[key] = (1 + sum(s for s, _ in sizes),
                         int(nests) + max((d for _, d in sizes), default=0))
            open_nodes.discard(key)
            continue
        if key in done:
            continue
        if key in open_nodes:
            name = next((a for a, n in anchors.items() if n is node), "?")
            raise YAMLLimitError(f"yaml: anchor '{name}' value contains itself")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(_children(node)) if id(c) not in done)
    return done


def _check_aliasing(root: Node, sizes: dict[int, tuple[int, int]]) -> None:
    """go-yaml's count, in document order: a node seen before is an alias, which counts
    itself and, as alias-driven decodes, everything it expands to."""
    seen: set[int] = set()
    decodes = aliased = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            expansion = sizes[id(node)][0]
            decodes += 1 + expansion
            aliased += expansion
            if aliased > 100 and decodes > 1000 and aliased / decodes > allowed_alias_ratio(decodes):
                raise YAMLLimitError("yaml: document contains excessive aliasing")
            continue
        seen.add(id(node))
        decodes += 1
        stack.extend(reversed(_children(node)))


def loads(data: bytes) -> Any:
    """One YAML document as JSON-like values; yaml.YAMLError for what does not parse or is
    over a limit."""
    loader = _BoundedLoader(data)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        sizes = _expanded(root, loader.named)
        if sizes[id(root)][1] > MAX_DEPTH:
            raise YAMLLimitError(f"yaml: exceeded max depth of {MAX_DEPTH}")
        _check_aliasing(root, sizes)
        return loader.construct_document(root)
    finally:
        loader.dispose()
