# One image for every container of compose.yaml: etcd (Debian's etcd-server), the control
# plane, DNS, the node agents and proxies, and the `tools` container (dig, curl).
# The base is Debian's; where it cannot be pulled, `python -m cluster.image` makes it offline
# with debootstrap and imports it under this name (see the README).
# runc runs the pods' containers in the node containers; busybox-static, nginx, python3 (3.11),
# curl and dig are what the nodes build their default images from (cluster/nodeimages.py);
# docker-registry serves them to the nodes, skopeo pushes them into it (cluster/registry.py).
FROM debian:bookworm-slim
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv iproute2 iptables nftables conntrack util-linux containernetworking-plugins \
      etcd-server bind9-dnsutils curl ca-certificates tzdata procps netbase \
      runc busybox-static nginx docker-registry skopeo \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
WORKDIR /app
# Behind a proxy that re-signs TLS, pass its CA certificates (PEM) so pip trusts it while
# building; they are not left in the image:
#   MINICLUSTER_BUILD_CA="$(cat /usr/local/share/ca-certificates/*.crt)" docker compose build
ARG EXTRA_CA_CERTS=
COPY requirements.txt pyproject.toml ./
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/ca.pem && printf '%s\n' "$EXTRA_CA_CERTS" >> /tmp/ca.pem \
 && python3 -m venv /app/.venv \
 && PIP_CERT=/tmp/ca.pem /app/.venv/bin/pip install --no-cache-dir --disable-pip-version-check -q -r requirements.txt \
 && rm /tmp/ca.pem
COPY . .
RUN /app/.venv/bin/pip install --no-cache-dir --disable-pip-version-check -q --no-deps --no-build-isolation -e .
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
