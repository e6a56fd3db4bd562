"""The StatefulSet controller: pods with a stable identity, made, replaced and updated in
ordinal order (kube's pkg/controller/statefulset), its own process.

Layers, pure first:
- `identity`: a pod's name `<set>-<ordinal>`, hostname and subdomain, its identity and
  revision labels, and the pod a revision makes;
- `revisions`: ControllerRevisions (the template as kube's patch, its hash and name, which
  revision is current and which is the update, the history to trim);
- `plan`: one sync (pods to create, relabel, delete; the status they add up to);
- `ownership`: which pods and revisions the set adopts or releases;
- `controller`: informers, the work queue, the API writes; `__main__`: the process.

volumeClaimTemplates are accepted and stored, and each pod gets the volume kube would give it
(`<claim>-<set>-<ordinal>`), but no PersistentVolumeClaim is made: this cluster has no storage
provisioner, and the node agent does not mount claims.
"""
