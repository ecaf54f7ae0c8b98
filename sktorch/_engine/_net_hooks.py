"""skorch's customization points of the net, offered on the estimators.

A skorch user subclasses ``NeuralNet`` and overrides ``get_loss`` (to add a
regulariser), ``train_step``, ``train_step_single`` or ``validation_step``.
An sktorch estimator is not a net but builds one at fit (``net_``): these
methods are defined on the estimators with skorch's signatures and
semantics, and the net calls the estimator's method whenever the
estimator's class overrides it. The defaults here call back into the net's
own implementation, so ``super().get_loss(...)`` in an override computes
the loss sktorch would have computed.
"""

from __future__ import annotations

import functools
from typing import Any

from skorch import NeuralNet

# The net's methods an estimator may override, in skorch's signatures.
HOOKS: tuple[str, ...] = ("get_loss", "train_step", "train_step_single", "validation_step")


def _net_default(method):
    """Mark an estimator method as the default that calls back into the net."""
    method.net_default = True
    return method


@functools.lru_cache(maxsize=None)
def overridden_hooks(cls: type) -> frozenset[str]:
    """The names of :data:`HOOKS` that estimator class ``cls`` overrides."""
    return frozenset(
        name for name in HOOKS
        if hasattr(cls, name) and not getattr(getattr(cls, name), "net_default", False)
    )


class NetHooksMixin:
    """skorch's customization points, overridable on a subclass of an
    estimator: the net calls the estimator's method wherever skorch's net
    would call its own (in ``fit``, ``partial_fit``, ``lr_find``).

    Only while fitting: they use the fitted net, ``self.net_`` (its
    ``module_``, ``criterion_``, ``optimizer_``, ``device``...), as skorch's
    methods use ``self``. Predictions (``predict``, ``predict_proba``) go
    through sktorch's own inference loop, which runs the module's
    ``forward`` and nothing else: the net's ``infer``,
    ``evaluation_step`` and ``forward`` are not customization points.
    """

    @_net_default
    def get_loss(self, y_pred: Any, y_true: Any, X: Any = None, training: bool = False) -> Any:
        """The loss of a batch, as skorch's ``NeuralNet.get_loss``.

        Override it to change the loss, e.g. to add a regulariser; call
        ``super().get_loss(...)`` for the loss sktorch computes (the
        ``criterion`` on the predictions and the targets, on the training
        device). It is called for training batches (``training=True``) and
        validation batches (``training=False``), so ``valid_loss`` includes
        what it adds.

        Parameters
        ----------
        y_pred : torch.Tensor
            The module's output for the batch.
        y_true : torch.Tensor
            The batch's targets, encoded as the criterion takes them.
        X : torch.Tensor or None, default=None
            The batch's inputs.
        training : bool, default=False
            Whether the batch is a training batch.

        Returns
        -------
        loss : torch.Tensor
            A scalar tensor.
        """
        return self.net_._get_loss(y_pred, y_true, X=X, training=training)

    @_net_default
    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """One training step on a batch, as skorch's ``NeuralNet.train_step``:
        forward, loss, backward, optimizer step.

        An override replaces the whole step, including sktorch's handling of
        ``precision``, ``max_grad_norm`` and ``accumulate_grad_batches``;
        ``super().train_step(batch, **fit_params)`` runs sktorch's step.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` tensors of the batch.
        **fit_params : dict
            Passed on to the module's ``forward`` (none by default).

        Returns
        -------
        step : dict
            At least ``'loss'`` (a scalar tensor) and ``'y_pred'``.
        """
        return self.net_._train_step(batch, **fit_params)

    @_net_default
    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Forward, loss and backward of one training batch, without the
        optimizer step, as skorch's ``NeuralNet.train_step_single``.

        Called by skorch's ``train_step``, which sktorch uses unless
        ``precision``, ``max_grad_norm``, ``accumulate_grad_batches`` or
        ``strategy`` ask for sktorch's own step; with those an override of
        this method is an error at fit (override ``get_loss`` or
        ``train_step`` instead).

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` tensors of the batch.
        **fit_params : dict
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            ``'loss'`` (a scalar tensor, whose gradient has been computed)
            and ``'y_pred'``.
        """
        return self.net_._train_step_single(batch, **fit_params)

    @_net_default
    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Loss and predictions of one validation batch, without gradients,
        as skorch's ``NeuralNet.validation_step``.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` tensors of the batch.
        **fit_params : dict
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            ``'loss'`` (a scalar tensor) and ``'y_pred'``.
        """
        return self.net_._validation_step(batch, **fit_params)


class NetHooks:
    """The net's side of :class:`NetHooksMixin`, mixed into ``SktorchNet``
    before skorch's ``NeuralNet``: each customization point calls the
    estimator's override when its class has one, else the net's own
    implementation (``_get_loss``, ``_train_step``, ``_train_step_single``,
    ``_validation_step``). When nothing is overridden, the cost is one test
    of an empty set per call.

    Also where a resumed fit puts back its callbacks' state (after their
    ``on_train_begin``, which resets it; see
    ``sktorch._engine._state.restore_training_state``).
    """

    # The names of HOOKS the estimator's class overrides; set with the
    # estimator (SktorchNet.estimator).
    _hooks: frozenset[str] = frozenset()

    def _hook(self, name: str) -> Any:
        """The estimator's override of customization point ``name``, or None."""
        if name in self._hooks:
            return getattr(self.estimator, name)
        return None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if self._hooks and (hook := self._hook("get_loss")) is not None:
            return hook(y_pred, y_true, X=X, training=training)
        return self._get_loss(y_pred, y_true, X=X, training=training)

    def train_step(self, batch, **fit_params):
        if self._hooks and (hook := self._hook("train_step")) is not None:
            return hook(batch, **fit_params)
        return self._train_step(batch, **fit_params)

    def train_step_single(self, batch, **fit_params):
        if self._hooks and (hook := self._hook("train_step_single")) is not None:
            return hook(batch, **fit_params)
        return self._train_step_single(batch, **fit_params)

    def _train_step_single(self, batch, **fit_params):
        return NeuralNet.train_step_single(self, batch, **fit_params)

    def validation_step(self, batch, **fit_params):
        if self._hooks and (hook := self._hook("validation_step")) is not None:
            return hook(batch, **fit_params)
        return self._validation_step(batch, **fit_params)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # Every callback's on_train_begin has run: a resumed fit puts back
        # the checkpoint's state of the callbacks now.
        restore = self.__dict__.pop("_restore_callbacks", None)
        if restore is not None:
            restore(self)
        if ("train_step_single" in self._hooks and "train_step" not in self._hooks
                and self._custom_step()):
            raise TypeError(
                f"{type(self.estimator).__name__} overrides train_step_single, which skorch's "
                "training step calls; with precision, max_grad_norm, accumulate_grad_batches "
                "or strategy set, sktorch's own step runs instead and would not call it. "
                "Override get_loss or train_step instead, or leave those at their defaults."
            )
        return super().fit_loop(X, y, epochs=epochs, **fit_params)
