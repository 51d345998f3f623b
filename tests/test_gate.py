"""The per-key gate: one hot key holds at most THREADS_PER_KEY worker threads, the rest wait
on the event loop; other keys are never held back; an idle key's gate is dropped."""

from __future__ import annotations

import asyncio

from predcache.server.gate import THREADS_PER_KEY, KeyGate


def crowd(gate: KeyGate) -> tuple[int, list[bool], bool, int]:
    """20 requests of one key at once, and one of another: (most inside at once, busy of
    each key meanwhile, the other key admitted, gates left after)."""

    async def main() -> tuple[int, list[bool], bool, int]:
        inside = 0
        most = 0
        release = asyncio.Event()

        async def hot() -> None:
            nonlocal inside, most
            async with gate.admit(("ETH/EUR", 300)):
                inside += 1
                most = max(most, inside)
                await release.wait()
                inside -= 1

        tasks = [asyncio.create_task(hot()) for _ in range(20)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        busy = [gate.busy(("ETH/EUR", 300)), gate.busy(("BTC/USD", 300))]
        other_in = False
        async with gate.admit(("BTC/USD", 300)):  # not held behind the hot key
            other_in = True
        release.set()
        await asyncio.gather(*tasks)
        return most, busy, other_in, len(gate._gates)

    return asyncio.run(main())


def test_one_key_gets_at_most_four_threads_and_other_keys_are_free() -> None:
    most, busy, other_in, left = crowd(KeyGate())
    assert THREADS_PER_KEY == 4
    assert most == 4
    assert busy == [True, False]
    assert other_in
    assert left == 0  # idle gates dropped


def test_without_a_bound_every_request_is_admitted_at_once() -> None:
    """``--stampede none``: the unprotected cache is not coalesced by the gate."""
    most, busy, other_in, left = crowd(KeyGate(None))
    assert most == 20
    assert busy == [True, False]  # still tracked: a request can tell it met others' work
    assert other_in
    assert left == 0
