"""The Secret kind as tables: Go's base64 reading of `data`, `stringData` merged into `data`,
and kube's ValidateSecret / ValidateSecretUpdate causes (field, message, reason)."""
from __future__ import annotations

import base64

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.secrets import base64_error_offset, convert_secret
from kubecore.api.types import Obj

INVALID, REQUIRED = "FieldValueInvalid", "FieldValueRequired"
FORBIDDEN, TOO_LONG = "FieldValueForbidden", "FieldValueTooLong"
KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
           "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
           "'[-._a-zA-Z0-9]+')")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("text, offset", [
    ("", None), ("YWJj", None), ("YQ==", None), ("YWI=", None), ("YW\nJj\r\n", None),
    ("abc", 0), ("YWJjabc", 4), ("YW*j", 2), ("Y===", 1), ("YQ=", 3), ("YQ=x", 2),
    ("YWI=YWJj", 4), ("=", 0),
], ids=["empty", "plain", "two-pads", "one-pad", "newlines-skipped", "short", "short-second-quantum",
        "bad-char", "pad-too-early", "missing-pad", "bad-second-pad", "data-after-pad", "only-pad"])
def test_base64_fails_where_go_s_decoder_does(text, offset):
    assert base64_error_offset(text.encode()) == offset


@pytest.mark.parametrize("obj, expected", [
    ({"data": {"a": "YWJj"}}, {"data": {"a": "YWJj"}}),
    ({"data": {"a": "YW\nJj"}}, {"data": {"a": "YWJj"}}),
    ({"stringData": {"b": "hello"}}, {"data": {"b": b64("hello")}}),
    ({"data": {"a": b64("old"), "b": b64("kept")}, "stringData": {"a": "new"}},
     {"data": {"a": b64("new"), "b": b64("kept")}}),
    ({"data": {}, "stringData": {}}, {}),
], ids=["canonical", "re-encoded", "string-data-merged", "string-data-overrides", "empty-dropped"])
def test_conversion_merges_string_data_and_never_keeps_it(obj, expected):
    convert_secret(obj)
    assert obj == expected


def test_a_value_that_is_not_base64_is_a_400_in_go_s_words():
    with pytest.raises(ApiError) as err:
        convert_secret({"data": {"a": "YWJjabc"}})
    assert (err.value.code, err.value.message) == (400, 'Secret in version "v1" cannot be handled '
                                                   "as a Secret: illegal base64 data at input byte 4")


def secret(stype: str | None = None, data: dict[str, str] | None = None, **extra: object) -> Obj:
    obj: Obj = {"metadata": {"name": "s"}, **extra}
    if stype:
        obj["type"] = stype
    if data is not None:
        obj["data"] = {k: b64(v) for k, v in data.items()}
    return obj


def causes(obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    return [(c.field, c.message, c.reason) for c in R.SECRETS.validate(obj, old)]


@pytest.mark.parametrize("obj, expected", [
    (secret(data={"a.b": "x", "A_B-1": "y"}), []),
    (secret(data={"bad/key": "x"}), [("data[bad/key]", f'Invalid value: "bad/key": {KEY_MSG}', INVALID)]),
    (secret(data={"..x": "x"}), [("data[..x]", "Invalid value: \"..x\": must not start with '..'", INVALID)]),
    (secret(data={"a": "x" * (1024 * 1024), "b": "y"}),
     [("data", "Too long: must have at most 1048576 bytes", TOO_LONG)]),
    (secret("kubernetes.io/tls", {"tls.crt": "c"}), [("data[tls.key]", "Required value", REQUIRED)]),
    (secret("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}), []),
    (secret("kubernetes.io/basic-auth", {}),
     [("data[username]", "Required value", REQUIRED), ("data[password]", "Required value", REQUIRED)]),
    (secret("kubernetes.io/basic-auth", {"password": ""}), []),
    (secret("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}),
     [("data[ssh-privatekey]", "Required value", REQUIRED)]),
    (secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": {}}'}), []),
    (secret("kubernetes.io/dockerconfigjson", {}), [("data[.dockerconfigjson]", "Required value", REQUIRED)]),
    (secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "[]"}),
     [("data[.dockerconfigjson]", 'Invalid value: "<secret contents redacted>": json: cannot unmarshal '
       "array into Go value of type map[string]interface {}", INVALID)]),
    (secret("kubernetes.io/dockercfg", {".dockercfg": "nope"}),
     [("data[.dockercfg]", "Invalid value: \"<secret contents redacted>\": invalid character 'n' "
       "looking for beginning of value", INVALID)]),
    (secret("kubernetes.io/service-account-token"),
     [("metadata.annotations[kubernetes.io/service-account.name]", "Required value", REQUIRED)]),
    (secret("bootstrap.kubernetes.io/token", {"token-id": "abcdef"}), []),
    (secret("example.com/custom"), []),
], ids=["opaque-keys", "bad-key", "dotdot-key", "over-1MiB", "tls-missing-key", "tls-empty-values",
        "basic-auth-neither", "basic-auth-one", "ssh-empty", "dockerconfigjson", "dockerconfigjson-missing",
        "dockerconfigjson-not-object", "dockercfg-not-json", "sa-token-annotation", "bootstrap-token",
        "custom-type"])
def test_secret_causes_on_create(obj, expected):
    assert causes(obj) == expected


@pytest.mark.parametrize("new, old, expected", [
    (secret("Opaque", {"a": "2"}), secret("Opaque", {"a": "1"}), []),
    (secret("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}), secret("Opaque"),
     [("type", 'Invalid value: "kubernetes.io/tls": field is immutable', INVALID)]),
    (secret("Opaque", {"a": "2"}, immutable=True), secret("Opaque", {"a": "1"}, immutable=True),
     [("data", "Forbidden: field is immutable when `immutable` is set", FORBIDDEN)]),
    (secret("Opaque", {"a": "1"}, immutable=False), secret("Opaque", {"a": "1"}, immutable=True),
     [("immutable", "Forbidden: field is immutable when `immutable` is set", FORBIDDEN)]),
    (secret("Opaque", {"a": "1"}, immutable=True), secret("Opaque", {"a": "1"}), []),
], ids=["data-changes", "type-changes", "immutable-data", "immutable-unset", "made-immutable"])
def test_secret_causes_on_update(new, old, expected):
    assert causes(new, old) == expected


def test_secrets_are_selectable_by_type():
    getters = R.SECRETS.field_getters
    assert set(getters) == {"metadata.name", "metadata.namespace", "type"}
    assert getters["type"]({"type": "kubernetes.io/tls"}) == "kubernetes.io/tls"
