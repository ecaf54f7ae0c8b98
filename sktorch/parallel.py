"""Running scikit-learn's searches on a Dask cluster.

scikit-learn parallelizes ``GridSearchCV`` through joblib, and joblib runs on
a ``dask.distributed`` cluster with its ``'dask'`` backend; sktorch adds no
engine of its own. It adds one repair: joblib's Dask backend (1.6) loses
the error of a task whose worker *died* (``distributed.KilledWorker``), so
the search waits forever instead of failing. :func:`dask_backend` is
joblib's backend with that error handed to joblib, which raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import joblib

__all__ = ["dask_backend"]

_BACKEND_NAME = "sktorch-dask"


@functools.lru_cache(maxsize=None)
def _fail_fast_backend() -> type:
    from joblib._dask import DaskDistributedBackend

    class FailFastDaskBackend(DaskDistributedBackend):
        """joblib's Dask backend, with the callback of a failed task called.

        joblib's own loop sets a dead task's error on a future ``Parallel``
        never reads, and skips the callback that tells ``Parallel``; this
        loop also calls it with the error, which joblib raises.
        """

        async def _collect(self):
            while self._continue:
                async for future, result in self.waiting_futures:
                    cf_future = self._results.pop(future)
                    callback = self._callbacks.pop(future)
                    if future.status == "error":
                        _, error, _ = result
                        cf_future.set_exception(error)
                        callback(error)
                    else:
                        cf_future.set_result(result)
                        callback(result)
                await asyncio.sleep(0.01)

    return FailFastDaskBackend


@contextlib.contextmanager
def dask_backend(**backend_options: Any) -> Iterator[None]:
    """Run joblib (and so scikit-learn's searches) on the current Dask client.

    Use it where joblib's own ``parallel_backend('dask')`` would go. It is
    that backend, except that a task whose worker died (killed for memory,
    a crashed process, a lost machine) makes the search raise
    ``distributed.KilledWorker`` instead of waiting forever (joblib 1.6's
    backend never reports it). Needs ``distributed`` (``pip install
    sktorch[dask]``) and a ``distributed.Client`` created beforehand.

    A worker with several threads runs several fits in one process; they
    give the results of ``n_jobs=1``, but train one at a time (torch's
    global random state is one per process; see "Fits in threads" in
    ``docs/scaling.md``). To train in parallel, use more worker processes
    with one thread each.

    Parameters
    ----------
    **backend_options : dict
        Passed to ``joblib.parallel_backend`` (``n_jobs``,
        ``wait_for_workers_timeout``, ``scatter``, ...).

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktorch import TorchClassifier
    >>> from sktorch.parallel import dask_backend
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(TorchClassifier(max_epochs=2, random_state=0),
    ...                       {"lr": [1e-3, 1e-2]}, cv=2)
    >>> with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster):
    ...     with dask_backend():
    ...         _ = search.fit(X, y)
    >>> sorted(search.best_params_)
    ['lr']
    """
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "sktorch.parallel.dask_backend needs dask.distributed: pip install 'sktorch[dask]'."
        ) from exc
    joblib.register_parallel_backend(_BACKEND_NAME, _fail_fast_backend())
    with joblib.parallel_backend(_BACKEND_NAME, **backend_options):
        yield
