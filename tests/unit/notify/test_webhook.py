"""The webhook notifier against a small HTTP server on 127.0.0.1 that collects the POSTs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.model.actions import Alert, Plan, Severity
from poolkeeper.notify import WebhookNotifier


class Collector:
    """Records every POST body; answers ``status`` (settable) to each."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 204
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if collector.status < 300:
                    collector.posts.append(body)
                self.send_response(collector.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def plan_with(*balances: float) -> Plan:
    alerts = tuple(
        Alert(
            target="account/operator",
            severity=Severity.WARN,
            message=f"balance {b} PHA is below the warn threshold 20 PHA",
            pool="pool-a",
        )
        for b in balances
    )
    return Plan(alerts=alerts, block=42)


async def test_posts_new_alerts_and_recoveries_debounced(hook: Collector, tmp_path: Path) -> None:
    clock = Clock()
    notifier = WebhookNotifier(hook.url, debounce_seconds=30, clock=clock)
    try:
        assert await notifier.notify(plan_with(3)) == []
        clock.now += 29
        assert await notifier.notify(plan_with(2.5)) == []
        assert hook.posts == []
        clock.now += 1
        sent = await notifier.notify(plan_with(2))
        assert len(sent) == 1
        clock.now += 100
        assert await notifier.notify(plan_with(1)) == []
        clock.now += 5
        assert len(await notifier.notify(Plan(block=50))) == 1
        assert await notifier.notify(Plan(block=51)) == []
    finally:
        await notifier.aclose()
    assert [p["events"][0]["event"] for p in hook.posts] == ["alert", "recovered"]
    first = hook.posts[0]
    assert first["format_version"] == 1
    assert first["source"] == "poolkeeper"
    assert first["block"] == 42
    event = first["events"][0]
    assert event["target"] == "account/operator"
    assert event["severity"] == "warn"
    assert event["pool"] == "pool-a"
    assert event["message"] == "balance 2 PHA is below the warn threshold 20 PHA"
    assert event["since"] == "2023-11-14T22:13:20Z"
    assert event["at"] == "2023-11-14T22:13:50Z"
    assert hook.posts[1]["block"] == 50


async def test_a_failed_post_is_retried_on_the_next_pass(hook: Collector) -> None:
    clock = Clock()
    notifier = WebhookNotifier(hook.url, debounce_seconds=0, clock=clock)
    try:
        hook.status = 500
        assert await notifier.notify(plan_with(3)) == []
        hook.status = 200
        clock.now += 10
        assert len(await notifier.notify(plan_with(3))) == 1
        assert await notifier.notify(plan_with(3)) == []
    finally:
        await notifier.aclose()
    assert len(hook.posts) == 1


async def test_an_unreachable_webhook_does_not_raise(hook: Collector) -> None:
    url = hook.url
    hook.close()
    notifier = WebhookNotifier(url, debounce_seconds=0, timeout_seconds=1)
    try:
        assert await notifier.notify(plan_with(3)) == []
    finally:
        await notifier.aclose()


async def test_state_file_keeps_one_shot_runs_from_repeating(
    hook: Collector, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "alerts.json"
    clock = Clock()
    for balance in (3, 2, 1):
        notifier = WebhookNotifier(hook.url, debounce_seconds=0, state_file=state, clock=clock)
        try:
            await notifier.notify(plan_with(balance))
        finally:
            await notifier.aclose()
        clock.now += 60
    assert [p["events"][0]["event"] for p in hook.posts] == ["alert"]
    notifier = WebhookNotifier(hook.url, debounce_seconds=0, state_file=state, clock=clock)
    try:
        await notifier.notify(Plan())
    finally:
        await notifier.aclose()
    assert [p["events"][0]["event"] for p in hook.posts] == ["alert", "recovered"]


async def test_the_token_part_of_the_url_is_masked_in_logs(
    hook: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from poolkeeper.keys import install_log_redaction

    install_log_redaction()
    token_url = hook.url.replace("/hook", "/services/T0001/B0002/sEcReTtOkEn42")
    notifier = WebhookNotifier(token_url, debounce_seconds=0)
    try:
        with caplog.at_level(logging.INFO):
            await notifier.notify(plan_with(3))
            logging.getLogger("test").info("posting to %s", token_url)
    finally:
        await notifier.aclose()
    assert len(hook.posts) == 1
    assert "127.0.0.1" in caplog.text
    assert "sEcReTtOkEn42" not in caplog.text
