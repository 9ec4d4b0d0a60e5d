"""Run blocks of images serially or in worker processes, yielding results in order.

Blocks are independent (each starts from the same model), so a run with N workers gives exactly
the results of a serial run.  At most ``2 × nproc`` blocks are in flight, so memory is bounded by
a few blocks of images whatever the sweep length.  Workers are started with the ``spawn`` method
(safe with numba's threads) and use one numba thread each.

Progress: ``on_image(number, stage)`` is called in the calling process once per image and stage
(see :func:`mosflm_py.processing.block.process_block`), in a serial run directly and from worker
processes through a queue that the main process drains while it waits for a block, so a
progress display advances per image whatever the number of workers.  Nothing here prints.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import queue
from collections.abc import Callable, Iterator, Sequence

from mosflm_py.kernels._jit import set_threads
from mosflm_py.processing.block import BlockJob, BlockResult, ImageProgress, process_block
from mosflm_py.signals import sigint_blocked, worker_init

_SOURCE = None
_EVENTS = None  # worker side: queue of (image, stage) progress events, or None
_POLL_S = 0.1  # how often the main process looks for progress events while a block runs


def _init_worker(source_factory: Callable[[], Callable], threads: int, events=None) -> None:
    global _SOURCE, _EVENTS

    worker_init()  # Ctrl-C is the main process's business; SIGTERM ends a worker quietly

    set_threads(threads)
    _SOURCE = source_factory()
    _EVENTS = events


def _ready() -> None:
    """A no-op task: submitting one per worker starts every worker."""


def _post_event(number: int, stage: str) -> None:
    if _EVENTS is not None:
        _EVENTS.put((number, stage))


def _run_in_worker(job: BlockJob) -> BlockResult:
    assert _SOURCE is not None
    return process_block(job, _SOURCE, _post_event if _EVENTS is not None else None)


def _drain(events, on_image: ImageProgress) -> None:
    """Hand every queued progress event to ``on_image`` (main process)."""
    while True:
        try:
            number, stage = events.get_nowait()
        except queue.Empty:
            return
        on_image(number, stage)


def run_blocks(
    jobs: Sequence[BlockJob],
    source_factory: Callable[[], Callable],
    nproc: int = 1,
    on_image: ImageProgress | None = None,
) -> Iterator[BlockResult]:
    """Process ``jobs`` and yield their results in order.

    Parameters
    ----------
    jobs : the blocks.
    source_factory : picklable zero-argument callable returning ``frame(n) -> ndarray`` (called
        once per worker, so each worker opens the images itself).
    nproc : worker processes (1 = in this process).
    on_image : called with ``(image number, stage)`` as each image is refined and integrated
        (always in the calling process; see the module docstring).
    """
    nproc = max(1, min(int(nproc), len(jobs)))
    if nproc == 1:
        source = source_factory()
        for job in jobs:
            yield process_block(job, source, on_image)
        return
    ctx = mp.get_context("spawn")
    events = ctx.Queue() if on_image is not None else None
    with cf.ProcessPoolExecutor(nproc, mp_context=ctx, initializer=_init_worker,
                                initargs=(source_factory, 1, events)) as pool:
        pending: dict[int, cf.Future] = {}
        next_submit = 0

        with sigint_blocked():  # workers start immune to Ctrl-C (see signals.sigint_blocked)
            for f in [pool.submit(_ready) for _ in range(nproc)]:
                f.result()
        try:
            for k in range(len(jobs)):
                while next_submit < len(jobs) and len(pending) < 2 * nproc:
                    pending[next_submit] = pool.submit(_run_in_worker, jobs[next_submit])
                    next_submit += 1
                fut = pending.pop(k)
                if events is not None and on_image is not None:
                    while not cf.wait([fut], timeout=_POLL_S).done:
                        _drain(events, on_image)
                    result = fut.result()
                    _drain(events, on_image)
                    yield result
                else:
                    yield fut.result()
        except BaseException:
            for f in pending.values():
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
