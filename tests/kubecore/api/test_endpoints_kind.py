"""core/v1 Endpoints: kube's ValidateEndpoints, SetDefaults_Endpoints and kubectl's columns."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubecore.api import resources as R
from kubecore.api.models import unknown_fields
from kubecore.api.validation.endpoints import validate_endpoints
from kubecore.printers.tables import render_text


def _ep(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "subsets": list(subsets)}


def _subset(*ips: str, ports: list[dict[str, Any]] | None = None, not_ready: tuple[str, ...] = (),
            **address: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ports": ports if ports is not None else
                           [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if ips:
        out["addresses"] = [{"ip": ip, **address} for ip in ips]
    if not_ready:
        out["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return out


TWO_PORTS = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]

VALIDATION: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {
    "ready and not ready addresses": (_ep(_subset("10.1.0.1", not_ready=("10.1.0.2",))), []),
    "no subsets": ({"metadata": {"name": "web"}}, []),
    "headless without ports": (_ep(_subset("10.1.0.1", ports=[])), []),
    "subset without addresses": (_ep(_subset()), [
        ("subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`")]),
    "not an IP": (_ep(_subset("10.1.0.300")), [
        ("subsets[0].addresses[0].ip",
         'Invalid value: "10.1.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')]),
    "loopback": (_ep(_subset("127.0.0.1")), [
        ("subsets[0].addresses[0].ip",
         'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)')]),
    "unspecified": (_ep(_subset(not_ready=("0.0.0.0",), ports=[])), [
        ("subsets[0].notReadyAddresses[0].ip", 'Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)')]),
    "link-local": (_ep(_subset("169.254.169.254")), [
        ("subsets[0].addresses[0].ip", 'Invalid value: "169.254.169.254": may not be in the '
         "link-local range (169.254.0.0/16, fe80::/10)")]),
    "link-local multicast": (_ep(_subset("224.0.0.1")), [
        ("subsets[0].addresses[0].ip", 'Invalid value: "224.0.0.1": may not be in the '
         "link-local multicast range (224.0.0.0/24, ff02::/10)")]),
    "hostname not a DNS label": (_ep(_subset("10.1.0.1", hostname="web.0")), [
        ("subsets[0].addresses[0].hostname", 'Invalid value: "web.0": a lowercase RFC 1123 label must '
         "consist of lower case alphanumeric characters or '-', and must start and end with an "
         "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
    "two ports need names": (_ep(_subset("10.1.0.1", ports=[{**TWO_PORTS[0], "name": ""}, TWO_PORTS[1]])), [
        ("subsets[0].ports[0].name", "Required value")]),
    "port out of range, protocol unknown": (
        _ep(_subset("10.1.0.1", ports=[{"name": "x", "port": 0, "protocol": "ICMP"}])), [
            ("subsets[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
            ("subsets[0].ports[0].protocol",
             'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')]),
    "appProtocol must be a qualified name": (
        _ep(_subset("10.1.0.1", ports=[{"port": 80, "protocol": "TCP", "appProtocol": "h2c!"}])), [
            ("subsets[0].ports[0].appProtocol", 'Invalid value: "h2c!": name part must consist of '
             "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
}


@pytest.mark.parametrize(("obj", "wanted"), VALIDATION.values(), ids=VALIDATION.keys())
def test_validation(obj: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    assert [(c.field, c.message) for c in validate_endpoints(obj, None)] == wanted


def test_port_protocol_defaults_to_tcp() -> None:
    obj = _ep(_subset("10.1.0.1", ports=[{"name": "http", "port": 80}]))
    R.ENDPOINTS.default(obj)
    assert obj["subsets"][0]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]


def test_strict_decoding_names_unknown_fields() -> None:
    obj = _ep(_subset("10.1.0.1", bogus=1))
    assert unknown_fields(R.ENDPOINTS.model, obj) == ["subsets[0].addresses[0].bogus"]


def test_served_as_core_v1_endpoints_with_short_name_ep() -> None:
    assert R.lookup("ep") is R.ENDPOINTS and R.lookup("endpoints") is R.ENDPOINTS
    assert R.by_path("", "v1", "endpoints") is R.ENDPOINTS and R.ENDPOINTS.namespaced


def _ready(n: int, *, port: int | None = 80) -> dict[str, Any]:
    return _subset(*[f"10.1.0.{i}" for i in range(1, n + 1)],
                   ports=[{"name": "http", "port": port, "protocol": "TCP"}] if port else [])


PRINTED: dict[str, tuple[dict[str, Any], str]] = {
    "no subsets": ({"metadata": {"name": "web"}}, "<none>"),
    "two ready": (_ep(_ready(2)), "10.1.0.1:80,10.1.0.2:80"),
    "first three and more": (_ep(_ready(5)), "10.1.0.1:80,10.1.0.2:80,10.1.0.3:80 + 2 more..."),
    "every port counts": (_ep(_subset("10.1.0.1", "10.1.0.2", ports=TWO_PORTS)),
                          "10.1.0.1:80,10.1.0.2:80,10.1.0.1:53 + 1 more..."),
    "headless without ports: bare IPs": (_ep(_ready(2, port=None)), "10.1.0.1,10.1.0.2"),
    "only not ready: empty": (_ep(_subset(not_ready=("10.1.0.9",))), ""),
}


@pytest.mark.parametrize(("obj", "cell"), PRINTED.values(), ids=PRINTED.keys())
def test_endpoints_column(obj: dict[str, Any], cell: str) -> None:
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    header, row = render_text("Endpoints", [obj], now=now).splitlines()
    assert header.split() == ["NAME", "ENDPOINTS", "AGE"]
    assert row.split(None, 1)[0] == "web" and row.rstrip().endswith("5m")
    assert row[header.index("ENDPOINTS"):header.index("AGE")].strip() == cell
