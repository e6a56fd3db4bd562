"""The proxy's flags: the minimum sync interval follows the mode unless given."""
from __future__ import annotations

import pytest

from services.proxy.__main__ import parse_args

REQUIRED = ["--apiserver", "http://127.0.0.1:1", "--node-name", "n1"]


@pytest.mark.parametrize(("flags", "expected"), [
    ([], 1.0),
    (["--proxy-mode", "iptables"], 1.0),
    (["--proxy-mode", "nftables"], 0.0),
    (["--proxy-mode", "nftables", "--min-sync-period", "0.5"], 0.5),
    (["--min-sync-period", "0"], 0.0),
], ids=["default", "iptables", "nftables", "nftables-given", "iptables-given"])
def test_min_sync_period_defaults_by_mode(flags: list[str], expected: float) -> None:
    assert parse_args([*REQUIRED, *flags]).min_sync_period == expected


def test_a_negative_min_sync_period_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([*REQUIRED, "--min-sync-period", "-1"])
    assert exited.value.code == 2
    assert "--min-sync-period must be >= 0" in capsys.readouterr().err
