"""The tip feeder: relays parked at the tip are fed each new block from one place.

Fake pRuntimes (``test_worker_relay.FakePRuntime``) that also answer ``call_soon`` like
the HTTP client does, on a later loop iteration; the fake chain source counts what it is
asked. Checked: parked relays receive both requests of a block with the op built once for
all of them and their own tasks not woken; a failure, a short answer or a hung pRuntime
sends that relay back to stepping by itself (backing off on a failure) while the others
go on; a duty due after the block (an egress check) releases the relay; at most
``window`` requests are in flight; stopping releases every relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.errors import PRuntimeUnavailable
from poolkeeper.pruntime import ProtoMessage
from poolkeeper.pruntime.messages import SyncedTo
from poolkeeper.relay.tip import TipFeeder
from poolkeeper.relay.worker import RelayCondition, RelayOptions, StepKind, WorkerRelay
from tests.unit.relay.test_worker_relay import FakePRuntime, FakeSource, run_until_tip


class FeedablePRuntime(FakePRuntime):
    """A fake pRuntime the feeder can send to: answers come through ``call_soon``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fail_next: Exception | None = None
        self.hang = False
        self.short = False
        self.in_flight = 0
        self.aborted = 0
        self.encodings = 0
        self.soon_calls: list[str] = []

    @property
    def url(self) -> str:
        return f"fake://{self.name}"

    def can_call_soon(self) -> bool:
        return True

    def encode_shared(self, method: str, payload: object, request: ProtoMessage) -> bytes:
        self.encodings += 1
        assert isinstance(payload, bytes)
        return payload

    def call_soon(
        self,
        method: str,
        encoded: bytes,
        response_type: type[Any],
        on_done: Callable[[Any], None],
    ) -> Callable[[], None] | None:
        self.soon_calls.append(method)
        self.in_flight += 1
        FeedablePRuntime.peak = max(FeedablePRuntime.peak, _in_flight_now())
        done = False

        def answer(result: Any) -> None:
            nonlocal done
            if done:
                return
            done = True
            self.in_flight -= 1
            on_done(result)

        def abort() -> None:
            self.aborted += 1
            answer(PRuntimeUnavailable(self.url, method, "timed out (aborted)"))

        if self.hang:
            return abort

        async def reply() -> None:
            await asyncio.sleep(0)
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                answer(error)
                return
            call = self.sync_header if method == "SyncHeader" else self.dispatch_blocks
            try:
                synced = await call(encoded)
            except Exception as exc:
                answer(exc)
                return
            answer(SyncedTo(synced - 1 if self.short else synced))

        _tasks.add(asyncio.ensure_future(reply()))
        return abort

    peak = 0


_tasks: set[asyncio.Future[None]] = set()
_all: list[FeedablePRuntime] = []


def _in_flight_now() -> int:
    return sum(p.in_flight for p in _all)


class Fleet:
    def __init__(self, size: int, *, tip: int = 10, window: int = 500) -> None:
        _all.clear()
        FeedablePRuntime.peak = 0
        self.source = FakeSource(tip)
        self.feeder = TipFeeder(
            cast(RelaySource, self.source), timeout=0.5, window=window, idle_seconds=0.05
        )
        self.pruntimes = [FeedablePRuntime(f"w{i}") for i in range(size)]
        _all.extend(self.pruntimes)
        self.relays = [
            WorkerRelay(
                p.name,
                cast(Any, p),
                cast(RelaySource, self.source),
                RelayOptions(backoff=(0.05,)),
                None,
                feeder=self.feeder,
            )
            for p in self.pruntimes
        ]
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for relay in self.relays:
            await run_until_tip(relay)  # caught up by themselves
        self.tasks = [asyncio.create_task(r.run(self.stop, idle_seconds=60)) for r in self.relays]
        self.tasks.append(asyncio.create_task(self.feeder.run(self.stop)))
        await until(lambda: self.feeder.parked == len(self.relays))
        for pruntime in self.pruntimes:
            pruntime.requests.clear()

    async def new_block(self) -> None:
        self.source.tip += 1

    async def close(self) -> None:
        self.stop.set()
        self.feeder.release_all()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 5)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_parked_relays_are_fed_each_block_with_one_op_for_all_and_stay_parked() -> None:
    fleet = Fleet(20, tip=10)
    await fleet.start()
    steps = [r.status.steps for r in fleet.relays]
    for block in range(11, 14):
        fleet.source.calls.clear()
        await fleet.new_block()
        await until(lambda b=block: all(p.blocknum == b + 1 for p in fleet.pruntimes))
        # the next header request and the blocks: once for the 20 relays
        assert fleet.source.calls.count(f"headers {block}..{block}") == 1, fleet.source.calls
        assert fleet.source.calls.count(f"blocks {block}..{block}") == 1, fleet.source.calls
    for pruntime in fleet.pruntimes:
        assert pruntime.soon_calls == ["SyncHeader", "DispatchBlocks"] * 3
        assert pruntime.requests == ["SyncHeader", "DispatchBlocks"] * 3  # nothing else
    assert [r.status.steps for r in fleet.relays] == steps  # their tasks never stepped
    assert all(r.status.blocknum == 14 and r.counters == (14, 0, 14) for r in fleet.relays)
    assert fleet.feeder.parked == 20
    await fleet.close()


async def test_a_failing_pruntime_backs_off_by_itself_while_the_others_are_fed() -> None:
    fleet = Fleet(5, tip=10)
    await fleet.start()
    broken, relay = fleet.pruntimes[2], fleet.relays[2]
    broken.fail_next = PRuntimeUnavailable(broken.url, "SyncHeader", "unreachable (refused)")
    await fleet.new_block()
    await until(lambda: relay.status.condition is RelayCondition.BACKING_OFF)
    assert relay.status.last_error is not None and "unreachable" in relay.status.last_error
    others = [p for p in fleet.pruntimes if p is not broken]
    await until(lambda: all(p.blocknum == 12 for p in others))
    # after its back-off it asks GetInfo (its counters were forgotten), syncs, parks again
    await until(lambda: broken.blocknum == 12 and fleet.feeder.parked == 5)
    assert "GetInfo" in broken.requests
    assert relay.status.condition is RelayCondition.AT_TIP
    await fleet.new_block()
    await until(lambda: all(p.blocknum == 13 for p in fleet.pruntimes))
    await fleet.close()


async def test_an_answer_short_of_what_was_sent_sends_the_relay_back_to_getinfo() -> None:
    fleet = Fleet(3, tip=10)
    await fleet.start()
    odd = fleet.pruntimes[0]
    odd.short = True
    await fleet.new_block()
    await until(lambda: "GetInfo" in odd.requests)
    odd.short = False
    await until(lambda: all(p.blocknum == 12 for p in fleet.pruntimes))
    await until(lambda: fleet.feeder.parked == 3)
    await fleet.close()


async def test_a_hung_pruntime_is_aborted_after_the_timeout_and_delays_no_one_else() -> None:
    fleet = Fleet(4, tip=10)
    await fleet.start()
    hung = fleet.pruntimes[1]
    hung.hang = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    await fleet.new_block()
    others = [p for p in fleet.pruntimes if p is not hung]
    await until(lambda: all(p.blocknum == 12 for p in others))
    assert loop.time() - started < 0.5  # not held back by the hung one (timeout 0.5 s)
    await until(lambda: hung.aborted == 1, seconds=5)
    assert fleet.relays[1].status.condition is RelayCondition.BACKING_OFF
    hung.hang = False
    await until(lambda: hung.blocknum == 12 and fleet.feeder.parked == 4)
    await fleet.close()


async def test_a_duty_due_after_the_block_releases_the_relay_which_then_parks_again() -> None:
    fleet = Fleet(2, tip=10)
    submitted: list[str] = []

    async def submit(job_id: str, call: object) -> bool:
        submitted.append(job_id)
        return True

    for relay in fleet.relays:
        relay.submit = cast(Any, submit)
    await fleet.start()
    fleet.relays[0].note_info(1)  # the observe pass saw a pending message
    fleet.pruntimes[0].egress = [0]
    await fleet.new_block()
    await until(lambda: submitted != [] and fleet.feeder.parked == 2)
    assert fleet.pruntimes[0].requests == ["SyncHeader", "DispatchBlocks", "GetEgressMessages"]
    assert fleet.pruntimes[1].requests == ["SyncHeader", "DispatchBlocks"]
    await fleet.close()


async def test_no_more_than_the_window_in_flight() -> None:
    fleet = Fleet(30, tip=10, window=4)
    await fleet.start()
    await fleet.new_block()
    await until(lambda: all(p.blocknum == 12 for p in fleet.pruntimes))
    assert FeedablePRuntime.peak == 4
    await fleet.close()


async def test_stopping_releases_every_parked_relay() -> None:
    fleet = Fleet(6, tip=10)
    await fleet.start()
    fleet.stop.set()
    await asyncio.wait_for(asyncio.gather(*fleet.tasks), 5)  # no release_all needed
    assert fleet.feeder.parked == 0


async def test_a_relay_without_call_soon_waits_for_blocks_by_itself() -> None:
    source = FakeSource(10)
    feeder = TipFeeder(cast(RelaySource, source), timeout=1, idle_seconds=0.05)
    pruntime = FakePRuntime()  # the port only: no call_soon
    relay = WorkerRelay(
        "w0", cast(Any, pruntime), cast(RelaySource, source), RelayOptions(), None, feeder=feeder
    )
    assert not feeder.can_feed(relay)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop, idle_seconds=0.01))]
    tasks.append(asyncio.create_task(feeder.run(stop)))
    await until(lambda: relay.status.condition is RelayCondition.AT_TIP)
    source.tip += 1
    await until(lambda: pruntime.blocknum == 12)
    assert feeder.parked == 0 and feeder.requests == 0
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert await relay.step() is StepKind.TIP


async def test_a_bug_on_an_answer_sends_that_relay_back_by_itself_and_the_feeder_goes_on() -> None:
    fleet = Fleet(3, tip=10)
    await fleet.start()
    relay = fleet.relays[1]
    original = relay.apply_answer
    calls = [0]

    def broken(op: Any, answer: Any) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug")
        original(op, answer)

    relay.apply_answer = broken  # type: ignore[method-assign]
    await fleet.new_block()
    await until(lambda: relay.status.last_error == "RuntimeError: a bug")
    await until(lambda: all(p.blocknum == 12 for p in fleet.pruntimes))
    await until(lambda: fleet.feeder.parked == 3)
    await fleet.new_block()
    await until(lambda: all(p.blocknum == 13 for p in fleet.pruntimes))
    await fleet.close()
