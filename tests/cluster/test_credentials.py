"""`cluster up` makes the PKI and one kubeconfig per component, each with its own identity."""
from __future__ import annotations

import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from cluster import credentials
from cluster.config import ClusterConfig
from kubecore.client.config import load_kubeconfig


def subject(cert_file: str) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(open(cert_file, "rb").read())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(o) for o in orgs]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    cfg = ClusterConfig(nodes=2, state_dir=tmp_path_factory.mktemp("state"))
    creds = credentials.make(cfg, extra_sans=("api.example.test", "192.0.2.7"))
    return cfg, creds


@pytest.mark.parametrize("component,user,groups", [
    ("scheduler", "system:kube-scheduler", []),
    ("endpointslice", "system:serviceaccount:kube-system:endpointslice-controller", []),
    ("dns", "system:serviceaccount:kube-system:coredns", []),
    ("nodeagent-mc-node-2", "system:node:mc-node-2", ["system:nodes"]),
    ("proxy-mc-node-1", "system:kube-proxy", []),
    ("netpol-mc-node-2", "system:netpol-agent", []),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_component_has_its_own_identity(made, component, user, groups):
    cfg, _ = made
    conf = load_kubeconfig(cfg.component_kubeconfig(component))
    assert conf.cert_file and conf.key_file and conf.ca_file == str(cfg.ca_file)
    assert subject(conf.cert_file) == (user, groups)
    on_node = component.startswith(("nodeagent-", "proxy-", "netpol-"))
    assert conf.server == (cfg.apiserver_url_for_nodes if on_node else cfg.apiserver_url)
    ssl.create_default_context(cafile=conf.ca_file).load_cert_chain(conf.cert_file, conf.key_file)


def test_the_admin_kubeconfig_embeds_a_masters_certificate(made):
    cfg, _ = made
    conf = load_kubeconfig(cfg.kubeconfig)
    assert conf.server == cfg.apiserver_url and conf.ca_data and conf.cert_data and conf.key_data
    assert conf.ssl_context() is not None
    cert = x509.load_pem_x509_certificate(conf.cert_data)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert oct(cfg.kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_the_apiserver_certificate_names_every_way_to_reach_it(made):
    cfg, creds = made
    cert = x509.load_pem_x509_certificate(creds.apiserver.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    names = set(sans.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", cfg.gateway_ip, "10.96.0.1", "192.0.2.7"} <= ips
    assert {"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "api.example.test"} <= names
    out = subprocess.run(["openssl", "verify", "-CAfile", str(cfg.ca_file), str(creds.apiserver.cert)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_private_keys_are_private_and_the_ca_is_kept(made):
    cfg, creds = made
    for key in cfg.pki_dir.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    ca_before = cfg.ca_file.read_bytes()
    credentials.make(cfg)
    assert cfg.ca_file.read_bytes() == ca_before


def test_ha_adds_the_second_apiserver_address_every_server_to_kubeconfigs_and_etcd_peer_pairs(tmp_path):
    cfg = ClusterConfig(nodes=1, state_dir=tmp_path, ha=True)
    creds = credentials.make(cfg)
    sans = x509.load_pem_x509_certificate(creds.apiserver.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    # both servers' addresses, and the load balancer's, which passes TLS through to them
    assert {"10.250.0.1", "10.250.0.254", "127.0.0.2"} <= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert load_kubeconfig(cfg.component_kubeconfig("scheduler")).more_servers == ("https://10.250.0.254:6443",)
    node = load_kubeconfig(cfg.component_kubeconfig("nodeagent-mc-node-1"))
    assert (node.server, node.more_servers) == ("https://10.250.0.1:6443", ("https://10.250.0.254:6443",))
    for k in (1, 2, 3):  # serving and client, as the members dial each other
        cert = x509.load_pem_x509_certificate((cfg.pki_dir / f"etcd-peer-etcd-{k}.crt").read_bytes())
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH}
        ips = {str(ip) for ip in cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)}
        assert "127.0.0.1" in ips
