"""What requests do to objects, with no HTTP and no etcd: the generic store and what it calls."""
