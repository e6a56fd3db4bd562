"""Data keys of Secrets and ConfigMaps become file names: one rule for both (IsConfigMapKey)."""
from __future__ import annotations

import pytest

from kubecore.api.formats import config_key_errors

BAD_CHARS = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
             "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
             "is '[-._a-zA-Z0-9]+')")


@pytest.mark.parametrize("key,errors", [
    ("ca.crt", []),
    ("key\n", [BAD_CHARS]),  # a whole-string match: no line break before the end
    (".", ["must not be '.'"]),
    ("..", ["must not be '..'"]),
    ("..data", ["must not start with '..'"]),
    ("a/b", [BAD_CHARS]),
], ids=["plain", "trailing-newline", "dot", "dotdot", "dotdot-prefix", "slash"])
def test_config_keys(key, errors):
    assert config_key_errors(key) == errors
