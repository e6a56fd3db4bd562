"""Objects in etcd: the store, the watch cache, paging, range allocations and the etcd client."""
