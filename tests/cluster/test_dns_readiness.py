"""kube-dns's endpoints (written by the launcher, which runs the DNS servers beside the control
plane) follow the DNS servers' readiness, against the real API server."""
from __future__ import annotations

import pytest

from cluster.config import ClusterConfig
from cluster.launcher import bootstrap_objects, publish_dns_readiness
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient

pytestmark = pytest.mark.etcd


async def test_a_dns_server_not_ready_is_listed_not_ready(apiserver, tmp_path):
    cfg = ClusterConfig(name="dnsr", state_dir=tmp_path, ha=True, dns_port=5353)
    apiserver.kubeconfig(cfg.kubeconfig)
    await bootstrap_objects(cfg)
    async with ApiClient(apiserver.config, timeout=10) as api:
        slice_ = await api.get(R.ENDPOINTSLICES, "kube-dns", "kube-system")
        assert [e["addresses"] for e in slice_["endpoints"]] == [["10.250.0.1"], ["10.250.0.254"]]
        before = slice_["metadata"]["resourceVersion"]

        await publish_dns_readiness(cfg, {"10.250.0.1": True, "10.250.0.254": True})
        unchanged = await api.get(R.ENDPOINTSLICES, "kube-dns", "kube-system")
        assert unchanged["metadata"]["resourceVersion"] == before, "no write without a change"

        await publish_dns_readiness(cfg, {"10.250.0.1": True, "10.250.0.254": False})
        slice_ = await api.get(R.ENDPOINTSLICES, "kube-dns", "kube-system")
        assert [e["conditions"]["ready"] for e in slice_["endpoints"]] == [True, False]
        endpoints = await api.get(R.ENDPOINTS, "kube-dns", "kube-system")
        assert endpoints["subsets"][0]["addresses"] == [{"ip": "10.250.0.1"}]
        assert endpoints["subsets"][0]["notReadyAddresses"] == [{"ip": "10.250.0.254"}]
        assert {p["port"] for p in endpoints["subsets"][0]["ports"]} == {5353}

        await publish_dns_readiness(cfg, {"10.250.0.1": True, "10.250.0.254": True})
        endpoints = await api.get(R.ENDPOINTS, "kube-dns", "kube-system")
        assert "notReadyAddresses" not in endpoints["subsets"][0]
        assert len(endpoints["subsets"][0]["addresses"]) == 2
