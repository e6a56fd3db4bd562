"""PodLogOptions from the query and kube's ValidatePodLogOptions, as a table."""
from __future__ import annotations

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.podlogs import PodLogOptions, agent_query


@pytest.mark.parametrize("query,message", [
    ({}, None),
    ({"tailLines": "0", "limitBytes": "1", "sinceSeconds": "1"}, None),
    ({"tailLines": "-1"},
     'PodLogOptions "p" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'),
    ({"limitBytes": "0"}, 'PodLogOptions "p" is invalid: limitBytes: Invalid value: 0: must be greater than 0'),
    ({"sinceSeconds": "-5"}, 'PodLogOptions "p" is invalid: sinceSeconds: Invalid value: -5: must be greater than 0'),
    ({"sinceSeconds": "5", "sinceTime": "2024-01-01T00:00:00Z"},
     'PodLogOptions "p" is invalid: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified'),
], ids=["none", "smallest-allowed", "negative-tail", "zero-limit", "negative-since", "both-since"])
def test_validation(query, message):
    opts = PodLogOptions.from_query(query)
    if message is None:
        opts.check("p")
        return
    with pytest.raises(ApiError) as info:
        opts.check("p")
    assert (info.value.code, info.value.reason, info.value.message) == (422, "Invalid", message)


@pytest.mark.parametrize("query,message", [
    ({"tailLines": "ten"}, 'strconv.ParseInt: parsing "ten": invalid syntax'),
    ({"follow": "yes"}, 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ({"sinceTime": "2024-01-01"}, 'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse as RFC3339'),
], ids=["int", "bool", "time"])
def test_values_of_the_wrong_type_are_bad_requests(query, message):
    with pytest.raises(ApiError) as info:
        PodLogOptions.from_query(query)
    assert (info.value.code, info.value.message) == (400, message)


def test_since_is_the_later_of_both_and_the_agent_gets_the_log_options_only():
    opts = PodLogOptions.from_query({"sinceSeconds": "10", "follow": "true", "previous": "1", "timestamps": "True"})
    assert (opts.follow, opts.previous, opts.timestamps, opts.since(100.0)) == (True, True, True, 90.0)
    later = PodLogOptions(since_seconds=100, since_time=50.0)
    assert later.since(120.0) == 50.0
    assert agent_query({"container": "c", "tailLines": "1", "pretty": "true"}) == {"tailLines": "1"}
