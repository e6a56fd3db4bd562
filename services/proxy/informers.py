"""Informer handlers feeding the Proxier.

The proxier's handlers only record the object and request a sync; the sync itself is
level-triggered over everything recorded, so a relist (which the informer delivers as
adds, updates and deletes) needs nothing special here.
"""
from __future__ import annotations

from kubecore.api import resources as R
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.informer import Informer
from services.proxy.proxier import Proxier


def attach_informers(proxier: Proxier, factory: SharedInformerFactory) -> tuple[Informer, ...]:
    """Services and EndpointSlices of all namespaces, into `proxier`; Nodes too when it
    announces load-balancer addresses (which node holds one depends on which are Ready)."""
    services = factory.informer(R.SERVICES)
    slices = factory.informer(R.ENDPOINTSLICES)
    services.add_handlers(
        on_add=proxier.on_service,
        on_update=lambda _old, new: proxier.on_service(new),
        on_delete=proxier.on_service_deleted,
    )
    slices.add_handlers(
        on_add=proxier.on_endpoint_slice,
        on_update=lambda _old, new: proxier.on_endpoint_slice(new),
        on_delete=proxier.on_endpoint_slice_deleted,
    )
    if proxier.addresses is None:
        return services, slices
    nodes = factory.informer(R.NODES)
    nodes.add_handlers(
        on_add=proxier.on_node,
        on_update=lambda _old, new: proxier.on_node(new),
        on_delete=proxier.on_node_deleted,
    )
    return services, slices, nodes
