"""The write fence (stream/batching/fence.py), against the real Kafka and Triton: a worker that loses its
partitions with batches stuck on Triton, and one paused past its session, never write after the new owner —
the exactness oracle of test_exactness.py passes — and say so in their logs."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stream.local.triton import free_ports
from stream.settings import Settings
from tests.stream.test_exactness import Workers, _check, _drive, _settings, _world
from tests.stream.workers import wait_for_members

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


class FreezingProxy:
    """A TCP forwarder to Triton that can stop forwarding (requests hang, as on a stuck server)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        (self.port,) = free_ports(1)
        self.loop = asyncio.new_event_loop()
        self.flowing = asyncio.Event()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def set_flowing(self, flowing: bool) -> None:
        self.loop.call_soon_threadsafe(self.flowing.set if flowing else self.flowing.clear)

    @contextmanager
    def running(self) -> Iterator[FreezingProxy]:
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.flowing.set()
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
            started.set()
            self.loop.run_forever()
            server.close()
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield self
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            thread.join(10)


def test_a_worker_losing_its_partitions_with_batches_stuck_on_triton_writes_nothing_after(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, tmp_path)
    proxy = FreezingProxy(settings.triton_url)
    with proxy.running(), Workers(settings, tmp_path).running() as workers:
        first = workers.start(LIFTSTREAM_TRITON_URL=f"127.0.0.1:{proxy.port}")

        async def freeze_and_rebalance() -> None:
            await workers.applied(first, 100, timeout_s=180)
            proxy.set_flowing(False)  # the first worker's batches now hang on Triton
            workers.start()
            await wait_for_members(settings, 2, timeout_s=120, alive=workers.alive)
            await asyncio.sleep(settings.group.revoke_drain_s + 5)
            proxy.set_flowing(True)

        run = asyncio.run(_drive(settings, _world(65), workers, [(0.3, 0.6, freeze_and_rebalance)]))
        assert "abandoned" in workers.logs[first].read_text()
    _check(run)


def test_a_worker_paused_past_its_session_and_resumed_writes_nothing_after_the_new_owner(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, tmp_path)
    with Workers(settings, tmp_path).running() as workers:
        workers.start()
        paused = workers.start()

        async def pause() -> None:
            await wait_for_members(settings, 2, timeout_s=180, alive=workers.alive)
            await workers.applied(paused, 100, timeout_s=120)
            os.kill(workers.procs[paused].pid, signal.SIGSTOP)
            await asyncio.sleep(settings.group.session_timeout_s + 4)  # the group moves its partitions
            os.kill(workers.procs[paused].pid, signal.SIGCONT)

        run = asyncio.run(_drive(settings, _world(66), workers, [(0.3, 0.6, pause)]))
        assert "stood still" in workers.logs[paused].read_text()
    _check(run)
