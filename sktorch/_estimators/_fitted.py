"""What a fitted estimator shows of itself: its module and history, a
per-layer summary, a plot of the history, and trimming for inference.

:class:`FittedViews` is a mixin of
:class:`~sktorch._estimators._base.BaseTorchEstimator`; the work is the
engine's (``_summary``, ``_plotting``, ``_trim``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from sktorch._engine._plotting import plot_history
from sktorch._engine._summary import summary
from sktorch._engine._trim import trim_for_inference
from sktorch._utils._validation import check_is_fitted


class FittedViews:
    """The fitted estimator's views: ``module_``, ``history_``,
    :meth:`summary`, :meth:`plot_history` and :meth:`trim_for_inference`."""

    # ------------------------------------------------------------ inspection
    def summary(self) -> str:
        """A per-layer table of the fitted module: output shapes for one
        sample and parameter counts, trainable and frozen.

        Returns
        -------
        table : str
            The table, one row per layer, with totals at the end; also what
            ``print(estimator.summary())`` shows.
        """
        check_is_fitted(self)
        return summary(self)

    def plot_history(self, ax: Any = None) -> Any:
        """Plot losses, validation metrics and the learning rate per epoch.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            One Axes per panel (losses, metrics when there are any, learning
            rate); None makes a new figure.

        Returns
        -------
        axes : ndarray of matplotlib Axes
            The panels.
        """
        return plot_history(self, ax=ax)

    def trim_for_inference(self) -> FittedViews:
        """Drop what only training needs: optimizer state, the per-batch
        records of ``history_`` and the callbacks.

        The estimator still predicts exactly as before and pickles and saves
        smaller; ``fit``, ``partial_fit`` and ``lr_find`` afterwards are an
        error.

        Returns
        -------
        self : object
            The trimmed estimator.
        """
        check_is_fitted(self)
        trim_for_inference(self)
        return self

    def _check_not_trimmed(self, method: str) -> None:
        if getattr(self, "_trimmed", False):
            raise RuntimeError(
                f"{type(self).__name__}.{method} cannot train this estimator: it was "
                "trimmed for inference (trim_for_inference dropped the optimizer state "
                "and callbacks). Fit a clone instead: sklearn.base.clone(estimator)."
            )

    # -------------------------------------------------------- fitted views
    @property
    def module_(self) -> nn.Module:
        """The trained ``nn.Module``."""
        return self.net_.module_

    @property
    def history_(self):
        """skorch ``History``: one dict per epoch (``train_loss``,
        ``valid_loss`` when validating, ``dur``, ...)."""
        return self.net_.history
