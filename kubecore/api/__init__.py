"""The Kubernetes API as data: no network, no files, no clocks beyond timestamps.

Where to find what (bottom to top; each module imports only those above it in this list):

    types.py           `Obj` (an object as decoded JSON) and TypedDicts for ObjectMeta and
                       ownerReferences, for the type checker only
    errors.py          `Status` errors and their causes
    formats.py         name, label, port and IP formats (apimachinery's util/validation)
    nodenet.py         what a Node may ask of the hosts' networks: pod ranges that are node
                       subnets of the cluster CIDR, node addresses that are plain IPs in the
                       node network, and the routes both make (API server, launcher, agents)
    selectorparse.py   the label selector language: lexer and parser (apimachinery's labels.Parse)
    selectors.py       label and field selectors: parsing and matching
    models.py          the pydantic models that check shapes; unknown fields (strict decoding)
    secrets.py         a Secret's wire form: Go's base64 of `data`, `stringData` merged in
                       (kube's v1 conversion), the Secret types and their keys
    leases.py          a Lease's MicroTimes, read as Go's time.Parse reads them, kept in UTC
    validation/        per-kind rules, one module per API group, as kubernetes'
                       pkg/apis/<group>/validation: meta.py (ObjectMeta, every kind),
                       core.py (Service, Pod, Node; podnet.py the pod fields that reach
                       the node), secrets.py (Secret), apps.py (Deployment, ReplicaSet),
                       discovery.py (EndpointSlice)
    defaults.py        what is filled in before validation, per kind (pkg/apis/<group>/v1/defaults.go)
    fieldselectors.py  the fields each kind can be selected by
    resources.py       the registry: `ResourceType` and one declaration per kind tying the above
                       together (`R.SERVICES`, ... `R.ALL`, `by_path`, `by_kind`, `lookup`)

Besides: the patch formats (`patch`), deletion propagation words (`propagation`), and the
wire formats shared by the API server and its clients (`jsonwire`, `remotecommand`), and YAML
request bodies within go-yaml's limits (`yamlwire`).
"""
