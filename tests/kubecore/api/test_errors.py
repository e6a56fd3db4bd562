"""Messages name a client's fields as kube-apiserver does: quoted by Go's strconv.Quote."""
from __future__ import annotations

import pytest

from kubecore.api.errors import go_quote


@pytest.mark.parametrize("text,quoted", [
    ("spec.x", '"spec.x"'),
    ("x\ny", '"x\\ny"'),
    ("a\r\nb\tc", '"a\\r\\nb\\tc"'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
    ("\u0085\u2028", '"\\u0085\\u2028"'),  # C1 control, line separator
    ("caf\u00e9 \u65e5\u672c", '"caf\u00e9 \u65e5\u672c"'),  # printable: as it is
    ("\U000e0001", '"\\U000e0001"'),  # a tag character (format, not printable)
], ids=["plain", "newline", "crlf-tab", "quote-backslash", "c0-del", "c1-separator", "unicode",
        "astral-format"])
def test_go_quote(text, quoted):
    assert go_quote(text) == quoted
    assert not any(ord(c) < 0x20 or c == "\x7f" for c in go_quote(text))
