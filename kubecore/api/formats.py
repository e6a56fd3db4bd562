"""Name, label, port and address formats of Kubernetes (apimachinery's util/validation).

Each function returns a list of messages (empty when valid), worded like
kube-apiserver's so that users recognise them. These are the rules below every kind's
validation (`kubecore.api.validation`) and the label selector parser (`selectors`), which is
why they live in a module of their own beneath both.

Patterns are applied with `fullmatch`: Go's `^...$` matches the whole string, while Python's
`$` also matches before a final newline, which would let "web\n" pass as a name (and reach
a pod's /etc/hosts).
"""
from __future__ import annotations

import ipaddress
import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


# The spellings of a boolean Go's strconv.ParseBool reads (query parameters, kubectl flags).
_GO_BOOLS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
             **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """`text` as Go's %q prints it (strconv.Quote), which is how kube-apiserver shows a string in
    an "Invalid value" message: control characters escaped, never raw."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_bool(text: str) -> bool | None:
    """`text` as Go's strconv.ParseBool reads it; None where it would fail."""
    return _GO_BOOLS.get(text)


def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                    "or '-', and must start and end with an alphanumeric character "
                    "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    """Service names: an RFC 1035 label (must start with a letter)."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character "
                    "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
    return errs


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _dot_errors(value: str) -> list[str]:
    """What apimachinery refuses of a name that becomes a path: '.', '..', or a '..' prefix."""
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def config_key_errors(value: str) -> list[str]:
    """A ConfigMap's (or Secret's) data key: it becomes a file name in volumes (IsConfigMapKey)."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _CONFIG_KEY.fullmatch(value):
        errs.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                    "is '[-._a-zA-Z0-9]+')")
    return errs + _dot_errors(value)


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """A label or annotation key: optional DNS subdomain prefix, '/', a name of <= 63 chars."""
    if not isinstance(value, str) or value == "":
        return ["name part must be non-empty"]
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character, with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += [f"prefix part {e}" for e in dns1123_subdomain_errors(prefix)]
    else:
        name = parts[0]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.fullmatch(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                    "or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return errs


label_key_errors = qualified_name_errors


def label_value_errors(value: object) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errs.append("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    return errs


def port_name_errors(value: str) -> list[str]:
    """IANA_SVC_NAME, used for named ports."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_SVC_NAME.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    return errs


def port_number_errors(value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def ip_errors(value: str) -> list[str]:
    """IsValidIP: an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def ipv4_errors(value: str) -> list[str]:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


ENV_VAR_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, "
                    "'_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
                    "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                    "'[-._a-zA-Z][-._a-zA-Z0-9]*')")
RELAXED_ENV_VAR_NAME_MSG = ("a valid environment variable name must consist only of printable ASCII "
                            "characters other than '='")


def env_var_name_errors(value: str) -> list[str]:
    """IsEnvVarName: the rule of kube-apiserver 1.31 with its feature gates at their defaults
    (RelaxedEnvironmentVariableValidation is alpha there)."""
    errs = [] if _ENV_VAR_NAME.fullmatch(value) else [ENV_VAR_NAME_MSG]
    return errs + _dot_errors(value)


def relaxed_env_var_name_errors(value: str) -> list[str]:
    """IsRelaxedEnvVarName: any printable ASCII character but '=' (what a process environment can
    hold). Applies where the stored object already uses such names, so updates keep working."""
    errs = [] if value else ["environment variable name must be non-empty"]
    if any(not " " <= ch <= "~" or ch == "=" for ch in value):
        errs.append(RELAXED_ENV_VAR_NAME_MSG)
    return errs


def path_segment_name_errors(value: str) -> list[str]:
    """A name that is safe as one URL path segment (apimachinery's IsValidPathSegmentName):
    the rule of RBAC roles and bindings, whose names hold ':' ("system:node")."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]
