"""Run blocks of images serially or in worker processes, yielding results in order.

Blocks are independent (each starts from the same model), so a run with N workers gives exactly
the results of a serial run.  At most ``2 × nproc`` blocks are in flight, so memory is bounded by
a few blocks of images whatever the sweep length.  Workers are started with the ``spawn`` method
(safe with numba's threads) and use one numba thread each.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence

from mosflm_py.kernels._jit import set_threads
from mosflm_py.processing.block import BlockJob, BlockResult, process_block
from mosflm_py.signals import sigint_blocked, worker_init

_SOURCE = None


def _init_worker(source_factory: Callable[[], Callable], threads: int) -> None:
    global _SOURCE

    worker_init()  # Ctrl-C is the main process's business; SIGTERM ends a worker quietly

    set_threads(threads)
    _SOURCE = source_factory()


def _ready() -> None:
    """A no-op task: submitting one per worker starts every worker."""


def _run_in_worker(job: BlockJob) -> BlockResult:
    assert _SOURCE is not None
    return process_block(job, _SOURCE)


def run_blocks(
    jobs: Sequence[BlockJob],
    source_factory: Callable[[], Callable],
    nproc: int = 1,
) -> Iterator[BlockResult]:
    """Process ``jobs`` and yield their results in order.

    Parameters
    ----------
    jobs : the blocks.
    source_factory : picklable zero-argument callable returning ``frame(n) -> ndarray`` (called
        once per worker, so each worker opens the images itself).
    nproc : worker processes (1 = in this process).
    """
    nproc = max(1, min(int(nproc), len(jobs)))
    if nproc == 1:
        source = source_factory()
        for job in jobs:
            yield process_block(job, source)
        return
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(nproc, mp_context=ctx, initializer=_init_worker,
                                initargs=(source_factory, 1)) as pool:
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
                yield pending.pop(k).result()
        except BaseException:
            for f in pending.values():
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
