# One image for all of the project's services (control plane, DNS, node agent, proxy).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv iproute2 iptables conntrack util-linux containernetworking-plugins \
      bind9-dnsutils curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN python3 -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
RUN /app/.venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e .
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
