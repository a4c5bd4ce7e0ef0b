"""The observer joins pRuntime polls and batched chain reads; failures become data."""

from __future__ import annotations

from collections.abc import Sequence

from poolkeeper.chain.ports import ChainState
from poolkeeper.errors import PRuntimeUnavailable
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import ChainHead, ChainWorker, PRuntimeInfo
from poolkeeper.observe.observer import observe


class Pruntimes:
    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0

    async def get_info(self, endpoint: str) -> PRuntimeInfo:
        import asyncio

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        if endpoint.endswith(":9"):
            raise PRuntimeUnavailable(f"{endpoint}: connection refused")
        index = int(endpoint.rsplit(":", 1)[1])
        return PRuntimeInfo(initialized=True, public_key=f"{index:064x}")


class Chain:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]] = []

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        self.calls.append((tuple(pids), tuple(addresses), tuple(pubkeys)))
        workers = {pk: ChainWorker(pubkey=pk, initial_score=100) for pk in pubkeys}
        return ChainState(
            head=ChainHead(best_number=10, finalized_number=8),
            cool_down_period=60,
            workers=workers,
            pools={},
            accounts={},
            proxies=(),
        )

    async def account_nonce(self, address: str) -> int:
        return 0


def desired(n: int) -> Desired:
    return Desired.model_validate(
        {
            "settings": {"pruntime_concurrency": 4},
            "pools": [{"name": "p", "pid": 3, "owner": "o"}],
            "workers": [
                {"name": f"w{i}", "endpoint": f"http://127.0.0.1:{i}", "pool": "p"}
                for i in range(1, n + 1)
            ],
        }
    )


async def test_unreachable_pruntime_is_an_observation_and_polls_are_bounded() -> None:
    chain, prt = Chain(), Pruntimes()
    observed = await observe(desired(20), chain, prt)
    assert (
        observed.pruntimes["http://127.0.0.1:9"].error == "http://127.0.0.1:9: connection refused"
    )
    assert observed.pruntimes["http://127.0.0.1:9"].info is None
    assert observed.pruntimes["http://127.0.0.1:2"].info is not None
    assert prt.max_in_flight == 4


async def test_workers_known_only_from_pruntime_are_read_in_one_extra_batch() -> None:
    chain = Chain()
    observed = await observe(desired(5), chain, Pruntimes())
    assert len(chain.calls) == 2
    assert chain.calls[0][0] == (3,)
    expected = {f"{i:064x}" for i in range(1, 6)}
    assert set(chain.calls[1][2]) == expected
    assert set(observed.chain_workers) == expected


async def test_poll_pruntimes_answers_every_endpoint_once_in_order() -> None:
    from poolkeeper.observe.observer import poll_pruntimes

    class Counting(Pruntimes):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[str] = []

        async def get_info(self, endpoint: str) -> PRuntimeInfo:
            self.asked.append(endpoint)
            return await super().get_info(endpoint)

    endpoints = [f"http://127.0.0.1:{i}" for i in range(1, 300)]
    source = Counting()
    polled = await poll_pruntimes(source, endpoints, 7)
    assert list(polled) == endpoints
    assert sorted(source.asked) == sorted(endpoints)
    assert source.max_in_flight == 7
    assert polled["http://127.0.0.1:9"].error and polled["http://127.0.0.1:10"].info
    assert await poll_pruntimes(Counting(), [], 7) == {}
    few = Counting()
    assert len(await poll_pruntimes(few, endpoints[:3], 500)) == 3
    assert few.max_in_flight == 3
