"""scripts/nbclient_poll.py: sliced polling keeps get_msg's contract (message or Empty on time)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from pathlib import Path
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def sliced(monkeypatch):
    """The plugin's get_msg, installed for this test only."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        plugin = importlib.import_module("nbclient_poll")
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", plugin._get_msg_sliced)
    monkeypatch.setattr(plugin, "SLICE_S", 0.05)
    return plugin


def _run(coro_fn):
    async def main():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session(key=b"k")
        try:
            return await coro_fn(AsyncZMQSocketChannel(a, session), b, session)
        finally:
            a.close(0)
            b.close(0)
            ctx.term()

    return asyncio.run(main())


def test_message_sent_during_the_wait_is_returned(sliced):
    async def body(channel, peer, session):
        async def later():
            await asyncio.sleep(0.3)  # several slices after the wait began
            session.send(peer, "execute_reply", {"status": "ok"})

        task = asyncio.ensure_future(later())
        t0 = time.monotonic()
        msg = await channel.get_msg(timeout=5)
        await task
        return msg, time.monotonic() - t0

    msg, waited = _run(body)
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
    assert 0.25 < waited < 2.0


def test_timeout_raises_empty_on_time(sliced):
    async def body(channel, peer, session):
        t0 = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0.4)
        return time.monotonic() - t0

    waited = _run(body)
    assert 0.35 < waited < 1.5


def test_zero_timeout_is_a_single_check(sliced):
    async def body(channel, peer, session):
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0)
        session.send(peer, "status", {"execution_state": "idle"})
        await asyncio.sleep(0.1)
        return await channel.get_msg(timeout=0)

    assert _run(body)["content"] == {"execution_state": "idle"}
