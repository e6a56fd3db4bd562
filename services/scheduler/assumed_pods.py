"""Pods the scheduler has bound that the pod informer does not show bound yet.

A binding is counted against its node from the moment the node is chosen (before the
POST, which is the only await between choosing and counting), so concurrent workers
spread a burst evenly instead of all picking the node that looked emptiest. The entry
goes when the informer shows the pod bound (it then counts there) or deleted, or when
the binding fails.
"""
from __future__ import annotations

from collections import Counter


class AssumedPods:
    def __init__(self) -> None:
        self._node_of: dict[str, str] = {}

    def assume(self, pod_key: str, node: str) -> None:
        self._node_of[pod_key] = node

    def forget(self, pod_key: str) -> None:
        self._node_of.pop(pod_key, None)

    def __contains__(self, pod_key: object) -> bool:
        return pod_key in self._node_of

    def __len__(self) -> int:
        return len(self._node_of)

    def counts(self) -> Counter[str]:
        return Counter(self._node_of.values())
