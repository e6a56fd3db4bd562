"""What a test needs, from its fixtures and its directory (tests/conftest.py)."""
from __future__ import annotations

import pytest

from tests.conftest import markers_for


@pytest.mark.parametrize(("top_dir", "fixtures", "expected"), [
    ("kubecore", ["tmp_path"], set()),
    ("apiserver", ["http", "apiserver", "etcd", "etcd_server"], {"etcd"}),
    ("nodeagent", ["runtime", "cni", "node_netns", "root_netns_untouched"], {"netns"}),
    ("proxy", ["lab"], {"netns"}),
    ("compat", ["kubectl", "apiserver_process", "etcd", "etcd_server"], {"compat", "etcd"}),
    ("e2e", [], {"e2e"}),
    ("compose", [], {"compose"}),
    ("nodeagent", ["root_netns_untouched"], set()),  # autouse and harmless without root
], ids=["pure", "api-server", "cni", "proxy-lab", "kubectl", "cluster", "compose", "autouse-guard"])
def test_markers_follow_fixtures_and_directories(top_dir, fixtures, expected):
    assert markers_for(top_dir, fixtures) == expected


def test_this_module_needs_nothing(request):
    assert not {"etcd", "netns", "e2e", "compat", "compose"} & {m.name for m in request.node.iter_markers()}
