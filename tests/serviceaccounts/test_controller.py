"""The ServiceAccount controllers against a real API server: `default` ServiceAccounts and
kube-root-ca.crt in every namespace, and both put back when deleted or changed."""
from __future__ import annotations

import aiohttp

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.serviceaccounts.controller import ServiceAccountsController
from services.serviceaccounts.plan import DESCRIPTION
from tests.support.controllers import running, until

CA = "-----BEGIN CERTIFICATE-----\nMIIBcontroller\n-----END CERTIFICATE-----\n"


async def exists(client: ApiClient, rt: R.ResourceType, name: str, ns: str):
    try:
        return await client.get(rt, name, ns)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def test_every_namespace_gets_and_keeps_its_default_account_and_root_ca(apiserver) -> None:
    async with ApiClient(apiserver.config) as client:
        controller = ServiceAccountsController(client, root_ca=CA)
        async with running(controller) as health:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                assert await until(lambda ns=ns: exists(client, R.SERVICEACCOUNTS, "default", ns))
            await client.create(R.NAMESPACES, {"metadata": {"name": "team"}})
            sa = await until(lambda: exists(client, R.SERVICEACCOUNTS, "default", "team"))
            cm = await until(lambda: exists(client, R.CONFIGMAPS, "kube-root-ca.crt", "team"))
            assert cm["data"] == {"ca.crt": CA}
            assert cm["metadata"]["annotations"] == {"kubernetes.io/description": DESCRIPTION}

            await client.delete(R.SERVICEACCOUNTS, "default", "team")

            async def recreated():
                again = await exists(client, R.SERVICEACCOUNTS, "default", "team")
                return again is not None and again["metadata"]["uid"] != sa["metadata"]["uid"]
            assert await until(recreated)

            await client.patch(R.CONFIGMAPS, "kube-root-ca.crt", {"data": {"ca.crt": "mine"}}, "team")

            async def restored():
                current = await exists(client, R.CONFIGMAPS, "kube-root-ca.crt", "team")
                return current is not None and current["data"] == {"ca.crt": CA}
            assert await until(restored)
            await client.delete(R.CONFIGMAPS, "kube-root-ca.crt", "team")
            assert await until(restored)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{health.port}/metrics") as r:
                    text = await r.text()
            assert "serviceaccounts_created_total 6.0" in text  # five namespaces, one re-created
            assert "root_ca_cert_publisher_writes_total" in text
