"""Warnings of semiclip (importing this module imports no torch).

Filter them like scikit-learn's, e.g.
``warnings.filterwarnings("error", category=GeneralizationWarning)``.
"""

__all__ = ["GeneralizationWarning"]


class GeneralizationWarning(UserWarning):
    """The distilled embedding does not beat the frozen encoder's ridge floor on held-out keys.

    Raised by :meth:`semiclip.SemiClippedTransformer.fit` when the adapter
    beats the floor (the frozen encoder through a ridge map onto the teacher
    centroids, fitted on the training keys) on neither held-out-key score of
    ``validation_report_``: cross-modal MRR and RSA with the teacher.
    """
