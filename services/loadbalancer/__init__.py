"""The load-balancer controller: gives each LoadBalancer Service an address from a pool on
the node network and writes it to `status.loadBalancer.ingress`, as MetalLB's layer-2 mode
and cloud-provider-kind give a kind cluster one. The address is then served by the proxies
(services/proxy: the KUBE-EXT-/KUBE-FW- chains, and the address answered on the node's link).

- `pool`: the pool, which Services are ours, which address each gets (pure, strictly typed);
- `controller`: an informer on Services, one worker (the pool's bookkeeping is a single
  writer), status writes that a conflict sends back to the queue;
- `__main__`: the process (`python -m services.loadbalancer --pool A-B`).

Which Services: type LoadBalancer with no `loadBalancerClass` (or the one given with
`--load-balancer-class`); a Service of another class belongs to another implementation and
is left alone. What address: the one asked for (`spec.loadBalancerIP` or the
`metallb.io/loadBalancerIPs` annotation) if it is in the pool and free, else the one it holds,
else the first free one. The assignments are recovered from the Services' status on start,
so a restart hands out nothing twice.
"""
