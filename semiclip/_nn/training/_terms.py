"""The structure-preserving terms of the training loop: weights, reference rows, epoch sums.

With ``TrainConfig.structure_weight`` or ``preservation_weight`` above 0 the
loop adds, to every minibatch loss,

``structure_weight * relational_loss(student, teacher)
+ preservation_weight * cka_loss(student, reference)``

(:func:`semiclip._nn.relational_loss`, :func:`semiclip._nn.cka_loss`).
``reference`` is the adapter's input: the model's input rows, unless the
model names another submodule through a ``preservation_reference()`` method
(:class:`semiclip._nn.FineTuned`, the model of ``train_encoder=True``, names
its encoder): then the output of that submodule in the same forward pass,
captured by a forward hook and detached, so that the term pulls the student
toward the encoder's structure and never the encoder toward the student.
With both weights 0 the loop builds no :class:`StructureTerms` and nothing
here runs.

Under DDP the terms are computed over the rows of every rank (see
:meth:`semiclip._nn.DDPContext.local_terms`).
"""

import torch

from .._structure import cka_loss, relational_loss

__all__ = ["StructureTerms", "preservation_reference"]


def preservation_reference(module):
    """The submodule whose output the input-preservation term compares the student with.

    ``module.preservation_reference()`` when the module defines it; None
    otherwise (the reference is then the model's input).
    """
    method = getattr(module, "preservation_reference", None)
    return method() if callable(method) else None


class StructureTerms:
    """The weighted terms of one :func:`fit_loop` call and their sums over the epoch.

    Parameters
    ----------
    module : torch.nn.Module
        The trained model (unwrapped).
    config : TrainConfig
    dist : DDPContext or None
    sums : Tensor
        A zero accumulator on the device, of the loop's accumulation dtype.
    """

    def __init__(self, module, config, dist, sums):
        self.structure_weight = float(config.structure_weight)
        self.preservation_weight = float(config.preservation_weight)
        self.dist = dist
        self.world = 1 if dist is None else dist.world_size
        self.sums = torch.zeros(2, dtype=sums.dtype, device=sums.device)
        self.captured = None
        self.hook = None
        source = preservation_reference(module) if self.preservation_weight > 0 else None
        if source is not None:
            self.hook = source.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output):
        self.captured = output.detach()

    def begin_epoch(self):
        self.sums.zero_()

    def add(self, loss, student, teacher, x, gathered=None):
        """``loss`` plus the weighted terms of one minibatch (their values summed on the device).

        ``x`` is the model's input; ``gathered`` every rank's student rows
        under DDP (gathered once for the main loss and the terms).
        """
        relational, preservation = self.structure_weight > 0, self.preservation_weight > 0
        reference = None
        if preservation:
            reference = x if self.hook is None else self.captured
        if self.dist is None:
            rel = relational_loss(student, teacher) if relational else None
            cka = cka_loss(student, reference) if preservation else None
        else:
            rel, cka = self.dist.local_terms(student, teacher, reference, gathered,
                                             relational=relational, preservation=preservation)
        rows = teacher.shape[0] / self.world
        if rel is not None:
            loss = loss + self.structure_weight * rel
            self.sums[0] += rel.detach() * rows
        if cka is not None:
            loss = loss + self.preservation_weight * cka
            self.sums[1] += cka.detach() * rows
        self.captured = None
        return loss

    def end_epoch(self, seen):
        """The epoch means ``(structure, preservation)``, None for a term whose weight is 0."""
        if self.dist is not None:
            self.dist.all_reduce_sum(self.sums)
        means = [v / max(seen, 1) for v in self.sums.tolist()]
        return (means[0] if self.structure_weight > 0 else None,
                means[1] if self.preservation_weight > 0 else None)

    def close(self):
        if self.hook is not None:
            self.hook.remove()
            self.hook = None
