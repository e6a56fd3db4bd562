"""Objects in etcd: the store, the watch cache, paging, range allocations and the etcd client;
how an object becomes an etcd value and back (`codec`), sealed at rest by the resource's
transformer (`transformers`: kube's aesgcm, aescbc and identity layouts) as
`--encryption-provider-config` says (`encryptionconfig`)."""
