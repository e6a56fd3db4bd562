"""kubecore.nftables against the real kernel: transactions through libnftables (and the nft
binary it falls back to) land in the named namespace only, atomically, with nft's own errors."""
from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from kubecore.nftables import Nftables, NftBinary, NftError, NftRunner

RUNNERS = {"libnftables": Nftables, "binary": NftBinary}


@pytest.fixture
def scratch_ns() -> Iterator[str]:
    name = f"mctest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(params=sorted(RUNNERS))
def runner(request: pytest.FixtureRequest, scratch_ns: str) -> Iterator[NftRunner]:
    nft: NftRunner = RUNNERS[request.param](scratch_ns)
    try:
        yield nft
    finally:
        nft.close()


def tables(netns: str | None) -> str:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


async def test_a_transaction_lands_in_the_namespace_and_nowhere_else(runner: NftRunner, scratch_ns: str) -> None:
    table = f"t{uuid.uuid4().hex[:8]}"
    await runner.run(f"add table ip {table}\nadd chain ip {table} c {{ ip saddr 10.1.2.3 drop ; }}\n")
    assert f"table ip {table}" in tables(scratch_ns)
    assert table not in tables(None)
    listed = await runner.run(f"list chain ip {table} c")
    assert "ip saddr 10.1.2.3 drop" in listed


async def test_a_refused_transaction_changes_nothing_and_says_why(runner: NftRunner, scratch_ns: str) -> None:
    with pytest.raises(NftError) as refused:
        await runner.run("add table ip keep\nadd chain ip keep c { ip frobnicate 1 drop ; }\n")
    assert refused.value.returncode != 0 and "syntax error" in refused.value.stderr
    assert "keep" not in tables(scratch_ns)
    with pytest.raises(NftError, match="No such file or directory"):
        await runner.run("add chain ip nosuchtable c\n")
    # the next transaction starts clean (no error text carried over)
    assert await runner.run("add table ip after\n") == ""
    assert "table ip after" in tables(scratch_ns)


async def test_a_namespace_that_does_not_exist_is_an_error() -> None:
    nft = Nftables(f"mcmissing-{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(NftError, match="cannot join network namespace"):
            await nft.run("list tables")
    finally:
        nft.close()


async def test_a_transaction_without_an_answer_gives_up_and_the_next_gets_a_new_worker(scratch_ns: str) -> None:
    nft = Nftables(scratch_ns, timeout=0)
    try:
        with pytest.raises(NftError, match="no answer"):
            await nft.run("add table ip slow\n")
        nft.timeout = 10
        await nft.run("add table ip next\n")
        assert "table ip next" in tables(scratch_ns)
    finally:
        nft.close()
