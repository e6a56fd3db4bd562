"""The proxy's sync runner: kubecore's BoundedFrequencyRunner (shared with the NetworkPolicy agent)."""
from kubecore.controller.runner import BoundedFrequencyRunner, SyncFunc, SyncTrigger

__all__ = ["BoundedFrequencyRunner", "SyncFunc", "SyncTrigger"]
