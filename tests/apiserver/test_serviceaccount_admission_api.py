"""The ServiceAccount admission plugin in a real API server (as kube-apiserver runs it, on by
default): a pod gets its ServiceAccount's token volume, or is refused when it has none."""
from __future__ import annotations

from tests.conftest import ApiServer, Http, api_settings

NS = "/api/v1/namespaces/default"
POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_pods_get_the_token_volume_or_are_refused(etcd) -> None:
    server = await ApiServer(api_settings(etcd, disable_admission_plugins=[])).start()
    try:
        async with server.session() as session:
            http = Http(session)
            status, refused = await http.post(f"{NS}/pods", {**POD, "spec": {**POD["spec"],
                                                                           "serviceAccountName": "robot"}})
            assert (status, refused["message"]) == (403, 'pods "p" is forbidden: error looking up service '
                                                    'account default/robot: serviceaccount "robot" not found')
            status, _ = await http.post(f"{NS}/serviceaccounts", {"metadata": {"name": "default"}})
            assert status == 201
            status, pod = await http.post(f"{NS}/pods", POD)
            assert status == 201, pod
            assert pod["spec"]["serviceAccountName"] == "default"
            (volume,) = pod["spec"]["volumes"]
            assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == 21
            assert pod["spec"]["containers"][0]["volumeMounts"] == [
                {"name": volume["name"], "readOnly": True,
                 "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    finally:
        await server.stop()
