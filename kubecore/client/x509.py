"""Who a client certificate names, as kube reads it: the first CommonName is the user, every
Organization a group. The API server's x509 authenticator and the node agent's HTTPS port
(which checks the API server's and users' certificates before asking for a review) read it the
same way."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def subject_of(peer_cert: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(CN, [O, ...]) of a certificate as `ssl.SSLSocket.getpeercert()` gives it."""
    cn, orgs = "", []
    for rdn in peer_cert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName" and not cn:
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return cn, orgs
