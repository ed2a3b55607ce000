"""pytest plugin for the notebooks step: kernel messages are polled in one-second slices.

Why: nbclient (which nbmake uses) waits for a cell's reply with one long
``socket.poll(timeout)`` on the kernel's shell socket. In this project's runs that wait
sometimes missed the socket's wake-up although the reply had arrived: chapter 4.2 sat idle
for exactly the 600 s cell timeout after its ``interactive`` widget cell (the kernel's reply
was stamped 0.1 s after the cell started), and Voila, built on the same client, hung the same
way. A poll that times out looks at the socket once more, which is why the cell then went on.
Polling in slices of at most one second bounds a missed wake-up to one second; the overall
timeout, and every other behaviour of ``get_msg``, is unchanged.

Loaded by scripts/test.sh with ``-p nbclient_poll`` (scripts/ on PYTHONPATH).
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.channels import AsyncZMQSocketChannel

SLICE_S = 1.0


async def _get_msg_sliced(
    self: AsyncZMQSocketChannel, timeout: float | None = None
) -> dict[str, Any]:
    """``AsyncZMQSocketChannel.get_msg`` with the wait cut into polls of at most SLICE_S."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SLICE_S if deadline is None else min(SLICE_S, deadline - time.monotonic())
        if await self.socket.poll(max(0, int(left * 1000))):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def pytest_configure(config: object) -> None:
    """pytest hook: install the sliced ``get_msg`` in this process (and in each xdist worker)."""
    AsyncZMQSocketChannel.get_msg = _get_msg_sliced  # type: ignore[method-assign]
