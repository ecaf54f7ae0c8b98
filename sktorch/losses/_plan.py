"""The loss plan of a fit: which loss, with which options, and how the module's output meets it.

An estimator decides its plan once per fit, when its target adapter encodes
y (the plan says whether a binary problem has one sigmoid logit or one
logit per class, which fixes the targets' encoding and the output width).
Net assembly builds the loss from the plan, the check of the module's first
outputs completes it (a module that outputs probabilities), and prediction
reads its output function. Everything about the loss is read through this
one object, the estimator's ``_loss_plan``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["LINKS", "LossPlan", "is_nll"]

#: The output functions of prediction: outputs as they are ('identity'),
#: a sigmoid of one logit, or a softmax over one logit per class.
LINKS = ("identity", "sigmoid", "softmax")


def is_nll(criterion: Any) -> bool:
    """Whether the loss is ``NLLLoss`` (class, subclass or instance)."""
    cls = criterion if inspect.isclass(criterion) else type(criterion)
    return issubclass(cls, nn.NLLLoss)


@dataclasses.dataclass(frozen=True)
class LossPlan:
    """Which loss a fit trains with, and how the module's output meets it.

    Parameters
    ----------
    criterion : type or nn.Module
        The loss class, or a private copy of the user's loss instance.
    options : mapping
        Options the loss class is built with: the task's defaults (a
        ``mode``, ``batch``) under the user's ``criterion__`` options. Empty
        for an instance, which is used as given.
    link : {'identity', 'sigmoid', 'softmax'}
        The output function of prediction.
    log_output : bool
        Whether the loss gets the log of the module's output (a module that
        outputs probabilities, trained with ``NLLLoss``).
    """

    criterion: Any
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    link: str = "identity"
    log_output: bool = False

    def __post_init__(self) -> None:
        if self.link not in LINKS:
            raise ValueError(f"The link of a LossPlan must be one of {LINKS}; got {self.link!r}.")

    @property
    def sigmoid(self) -> bool:
        """Whether the module has one logit, scored with a sigmoid."""
        return self.link == "sigmoid"

    def build_arguments(self) -> tuple[Any, dict[str, Any]]:
        """The loss and its options for one net: an instance is copied
        again, since building moves it to the net's device."""
        criterion = self.criterion
        if isinstance(criterion, nn.Module):
            criterion = copy.deepcopy(criterion)
        return criterion, dict(self.options)

    def with_output(self, kind: str) -> LossPlan:
        """The plan once the module's first outputs are known to hold
        ``kind`` ('scores', 'probabilities' or 'log_probabilities'): a
        module of probabilities is read as it is, its log given to NLLLoss."""
        if kind != "probabilities":
            return self
        return dataclasses.replace(self, link="identity", log_output=is_nll(self.criterion))

    def saved(self) -> dict[str, str]:
        """What a file keeps of the plan; the rest follows from the
        hyperparameters (see :meth:`restored`)."""
        return {"link": self.link}

    def restored(self, saved: Any) -> LossPlan:
        """This plan (made anew from the hyperparameters) completed by what
        :meth:`saved` kept. Raises ValueError if the two disagree."""
        if not (isinstance(saved, dict) and set(saved) == {"link"}
                and saved["link"] in LINKS):
            raise ValueError(f"a loss plan must be {{'link': one of {LINKS}}}; got {saved!r:.200}")
        link = saved["link"]
        if link == self.link:
            return self
        if link == "identity" and self.link == "softmax":
            return self.with_output("probabilities")
        raise ValueError(
            f"the saved output function {link!r} does not fit the loss, whose output "
            f"function is {self.link!r}"
        )
