"""No container of a new pod starts before its NetworkPolicy is in place: once CNI gave the
sandbox its address, the node's policy agent is told it and answers when its table accounts
for the pod (services/netpol, `POST /podnetwork` on its node-local health port). Until then
the pod has no process that could send or listen. A gate that cannot answer fails the
sandbox, which is removed and made again on the pod's next sync, as a CNI plugin that cannot
reach its policy engine fails ADD."""
from __future__ import annotations

import aiohttp


class PolicyGateError(Exception):
    pass


class PolicyGate:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/podnetwork"
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def wait(self, namespace: str, name: str, uid: str, ip: str) -> None:
        """Return once the pod's policy covers `ip`; PolicyGateError saying why not."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = {"namespace": namespace, "name": name, "uid": uid, "ip": ip, "timeout": self.timeout}
        try:
            async with self._session.post(self.url, json=body,
                                          timeout=aiohttp.ClientTimeout(total=self.timeout + 5)) as resp:
                if resp.status == 200:
                    return
                try:
                    why = (await resp.json()).get("error") or resp.reason
                except (aiohttp.ContentTypeError, ValueError):
                    why = resp.reason
                raise PolicyGateError(f"the network policy agent answered {resp.status}: {why}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PolicyGateError(f"the network policy agent at {self.url} is not answering: "
                                  f"{exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
