"""The structure-preserving terms of the training loop: weights, reference rows, epoch sums.

With ``TrainConfig.structure_weight`` or ``preservation_weight`` above 0 the
loop adds, to every minibatch loss,

``structure_weight * relational_loss(student, teacher)
+ preservation_weight * cka_loss(student, reference)
+ anchor_weight * anchor_loss(student, start(x), anchor_scale)``

(:func:`semiclip._nn.relational_loss`, :func:`semiclip._nn.cka_loss`).
``reference`` is the adapter's input: the model's input rows, unless the
model names another submodule through a ``preservation_reference()`` method
(:class:`semiclip._nn.FineTuned`, the model of ``train_encoder=True``, names
its encoder): then the output of that submodule in the same forward pass,
captured by a forward hook and detached, so that the term pulls the student
toward the encoder's structure and never the encoder toward the student.
``start`` is the frozen starting model (``TrainData.anchor``, the ridge
start of the estimator), run on the same input rows as the student. With
every weight 0 the loop builds no :class:`StructureTerms` and nothing here
runs.

Under DDP the terms are computed over the rows of every rank (see
:meth:`semiclip._nn.DDPContext.local_terms`); the anchor is a mean over rows,
so a rank's share is its rows' sum times ``world_size / n_global`` (the
gradient average over ranks then gives the gradient of the global mean).
"""

import torch

from .._structure import anchor_sum, cka_loss, relational_loss

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
    anchor : torch.nn.Module or None
        The frozen starting model of the anchor term (needed when
        ``config.anchor_weight > 0``).
    """

    def __init__(self, module, config, dist, sums, anchor=None):
        self.structure_weight = float(config.structure_weight)
        self.preservation_weight = float(config.preservation_weight)
        self.anchor_weight = float(getattr(config, "anchor_weight", 0.0))
        self.anchor_scale = float(getattr(config, "anchor_scale", 1.0))
        self.anchor = None
        if self.anchor_weight > 0:
            if anchor is None:
                raise ValueError("TrainConfig.anchor_weight > 0 needs TrainData.anchor, the "
                                 "starting model to anchor to.")
            self.anchor = anchor.to(sums.device).eval().requires_grad_(False)
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
        if self.anchor is not None:
            loss = loss + self.anchor_weight * self._anchor_share(student, x, teacher.shape[0])
        if rel is not None:
            loss = loss + self.structure_weight * rel
            self.sums[0] += rel.detach() * rows
        if cka is not None:
            loss = loss + self.preservation_weight * cka
            self.sums[1] += cka.detach() * rows
        self.captured = None
        return loss

    def _anchor_share(self, student, x, n_global):
        """This rank's share of ``anchor_loss(student, start(x), anchor_scale)`` (all of it on
        one process): its rows' sum times ``world_size / n_global``."""
        if student.shape[0] == 0:
            return student.sum() * 0.0
        with torch.no_grad():
            start = self.anchor(x)
        return anchor_sum(student, start) * (self.world / (max(n_global, 1) * self.anchor_scale))

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
