"""The ServiceAccount controllers of kube-controller-manager, in one process:

- the serviceaccount controller (pkg/controller/serviceaccount): a `default` ServiceAccount in
  every active namespace, made again when deleted, so pods that name none can be admitted;
- the root CA publisher (pkg/controller/certificates/rootcacertpublisher): the `kube-root-ca.crt`
  ConfigMap (key `ca.crt`: the cluster CA, `--root-ca-file`) in every active namespace, put
  back when deleted or changed, so projected token volumes can verify the API server.

- `plan`: what a namespace needs (pure);
- `controller`: the informers (namespaces, ServiceAccounts, ConfigMaps), one queue of
  namespaces, the worker that applies the plan;
- `__main__`: the process (`python -m services.serviceaccounts`).
"""
