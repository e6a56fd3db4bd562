"""A pod's ServiceAccount end to end without root: the API server admits it with the token
volume, the ServiceAccount controllers make `default` and kube-root-ca.crt, and a node agent
(the in-memory runtime) writes the token, the CA and the namespace, mounts them into the
container, gives it the `kubernetes` Service's variables, and removes the volume with the pod."""
from __future__ import annotations

import asyncio
from pathlib import Path

from kubecore.api.errors import ApiError
from kubecore.api.resources import PODS, SERVICES
from kubecore.client.rest import ApiClient
from services.apiserver.authn import Credentials
from services.nodeagent.agent import Agent, AgentConfig
from services.nodeagent.cni import NetworkConfigList
from services.nodeagent.podsync import Backoff
from services.serviceaccounts.controller import ServiceAccountsController
from tests.conftest import ApiServer, api_settings
from tests.fakes.cni import FakeCni
from tests.fakes.runtime import FakeRuntime
from tests.nodeagent.test_agent_fake_runtime import NoRoutes, eventually
from tests.support.controllers import running

CA = "-----BEGIN CERTIFICATE-----\nMIIBagent\n-----END CERTIFICATE-----\n"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


async def test_a_pod_gets_its_token_ca_and_namespace_and_the_service_variables(etcd, tmp_path: Path) -> None:
    server = await ApiServer(api_settings(etcd, disable_admission_plugins=[])).start()
    made: list[FakeRuntime] = []

    def make_runtime(cfg: AgentConfig, conflist: NetworkConfigList) -> FakeRuntime:
        made.append(FakeRuntime(node_name=cfg.node_name, network=FakeCni(agent.pod_cidr or "")))
        return made[-1]

    cfg = AgentConfig(apiserver=server.config, node_name="n1", node_ip="127.0.0.1", state_dir=tmp_path / "state",
                      cni_conf_dir=tmp_path / "cni", heartbeat_interval=1.0, relist_interval=0.05,
                      backoff=Backoff(base=0.2, cap=1.0), workers=2)
    agent = Agent(cfg, make_runtime=make_runtime)
    agent.routes = NoRoutes()  # type: ignore[assignment]
    workers: asyncio.Task[None] | None = None
    try:
        async with ApiClient(server.config) as client:
            async with running(ServiceAccountsController(client, root_ca=CA)):
                await asyncio.wait_for(agent.start(), 15)
                workers = asyncio.create_task(agent.run_workers())
                pod = await eventually(lambda: client.create(PODS, {
                    "metadata": {"name": "p", "namespace": "default"},
                    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}))
                (volume,) = pod["spec"]["volumes"]
                uid = pod["metadata"]["uid"]
                vdir = cfg.state_dir / "pods" / uid / "volumes" / "kubernetes.io~projected" / volume["name"]
                (runtime,) = made
                container = await eventually(lambda: asyncio.sleep(0, runtime.by_name("c")))
                (c,) = container
                assert [(m.container_path, m.host_path, m.read_only) for m in c.mounts] == [
                    (MOUNT_PATH, str(vdir), True)]
                assert (vdir / "ca.crt").read_text() == CA
                assert (vdir / "namespace").read_text() == "default"
                user = await server.state.authenticator.authenticate(Credentials(
                    peer_cert=None, bearer=(vdir / "token").read_text(), path="/api/v1/pods"))
                assert user.name == "system:serviceaccount:default:default"
                assert dict(user.extra)["authentication.kubernetes.io/pod-uid"] == (uid,)
                assert dict(user.extra)["authentication.kubernetes.io/node-name"] == ("n1",)
                kubernetes = await client.get(SERVICES, "kubernetes", "default")
                assert c.env["KUBERNETES_SERVICE_HOST"] == kubernetes["spec"]["clusterIP"]
                assert c.env["KUBERNETES_SERVICE_PORT"] == "443"
                assert c.env["KUBERNETES_PORT_443_TCP"] == f"tcp://{kubernetes['spec']['clusterIP']}:443"
                assert (cfg.state_dir / "pods").stat().st_mode & 0o777 == 0o700

                await client.delete(PODS, "p", "default")

                async def volume_gone() -> bool:
                    try:
                        await client.get(PODS, "p", "default")
                        return False
                    except ApiError as exc:
                        return exc.code == 404 and not (cfg.state_dir / "pods" / uid).exists()
                await eventually(volume_gone, timeout=15)
    finally:
        await agent.stop()
        if workers is not None:
            await asyncio.wait_for(workers, 5)
        await server.stop()
