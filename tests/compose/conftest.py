"""compose.yaml run for real: an engine (the one that answers, else a private dockerd), the
project's image (its base made offline if it cannot be pulled), and a host that keeps the
cluster's ranges to itself while the containers run."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cluster import dockerengine, image


@pytest.fixture(scope="package")
def docker_env() -> Iterator[dict[str, str]]:
    """The environment a docker/compose client needs to reach the engine."""
    if dockerengine.answers():
        yield {}
        return
    if os.geteuid() != 0:
        pytest.skip("no Docker engine answers, and starting one needs root")
    try:
        engine = dockerengine.PrivateEngine.start()
    except dockerengine.EngineError as exc:
        pytest.skip(str(exc))
    try:
        yield engine.env
    finally:
        engine.stop()


@pytest.fixture(scope="package")
def project_image(docker_env: dict[str, str]) -> str:
    image.ensure_base(env=docker_env)
    image.build(env=docker_env)
    return image.IMAGE


@pytest.fixture(scope="package")
def ranges_blackholed() -> Iterator[list[str]]:
    with dockerengine.ranges_blackholed() as added:
        yield added
