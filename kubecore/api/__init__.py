"""The Kubernetes API as data: no network, no files, no clocks beyond timestamps.

Where to find what (bottom to top; each module imports only those above it in this list):

    types.py           `Obj` (an object as decoded JSON) and TypedDicts for ObjectMeta and
                       ownerReferences, for the type checker only
    errors.py          `Status` errors and their causes
    formats.py         name, label, port and IP formats (apimachinery's util/validation)
    quantity.py        resource quantities (apimachinery's resource.Quantity), exact fractions
    nodenet.py         what a Node may ask of the hosts' networks: pod ranges that are node
                       subnets of the cluster CIDR, node addresses that are plain IPs in the
                       node network, and the routes both make (API server, launcher, agents)
    selectorparse.py   the label selector language: lexer and parser (apimachinery's labels.Parse)
    selectors.py       label and field selectors: parsing and matching
    cron.py            CronJob schedules: kube's cron parser (robfig/cron v3) and next times
    batch.py           batch/v1's label, annotation and finalizer names, a Job's generated
                       selector (kube's job strategy on create), its conditions
    models.py          the pydantic models that check shapes; unknown fields (strict decoding)
    servicespec.py     what a Service's type needs (cluster IP, node ports, health check port) and
                       what an update drops or keeps of the type-dependent fields (kube's strategy)
    secrets.py         a Secret's wire form: Go's base64 of `data`, `stringData` merged in
                       (kube's v1 conversion), the Secret types and their keys
    subsets.py         core/v1 Endpoints subsets in kube's canonical layout (RepackSubsets)
    leases.py          a Lease's MicroTimes, read as Go's time.Parse reads them, kept in UTC
    validation/        per-kind rules, one module per API group, as kubernetes'
                       pkg/apis/<group>/validation: meta.py (ObjectMeta, every kind),
                       core.py (Pod, Node; podnet.py the pod fields that reach the node),
                       service.py (Service), secrets.py (Secret), apps.py (Deployment, ReplicaSet),
                       statefulset.py (StatefulSet),
                       discovery.py (EndpointSlice), batch.py (Job, CronJob)
    defaults.py        what is filled in before validation, per kind (pkg/apis/<group>/v1/defaults.go)
    fieldselectors.py  the fields each kind can be selected by
    resources.py       the registry: `ResourceType` and one declaration per kind tying the above
                       together (`R.SERVICES`, ... `R.ALL`, `by_path`, `by_kind`, `lookup`)

Besides: the patch formats (`patch`), deletion propagation words (`propagation`), and the
wire formats shared by the API server and its clients (`jsonwire`, `remotecommand`), and YAML
request bodies within go-yaml's limits (`yamlwire`).
"""
