"""The ranks of ``strategy="ddp"``: one random state for all of them, and a check that they
were given the same data.
"""

import numpy as np
from sklearn.utils import check_random_state

from .._nn import ddp_context

__all__ = ["check_ranks_agree", "random_state_and_context"]


def random_state_and_context(random_state, *, ddp, device):
    """``(RandomState, DDPContext or None)``; the ranks of a DDP job share one seed."""
    if not ddp:
        return check_random_state(random_state), None
    ctx = ddp_context(device)
    if random_state is None:  # every rank must draw the same numbers
        random_state = ctx.broadcast_int(np.random.default_rng().integers(2**31 - 1))
    return check_random_state(random_state), ctx


def check_ranks_agree(ctx, **values):
    """Raise a ValueError naming every value (one per rank) the ranks disagree on."""
    table = ctx.gather_ints(list(values.values()))
    differ = [k for i, k in enumerate(values) if np.unique(table[:, i]).size > 1]
    if differ:
        per_rank = {k: table[:, list(values).index(k)].tolist() for k in differ}
        raise ValueError(
            f"strategy='ddp': the ranks disagree on {per_rank} (one value per rank). Every "
            "rank must call fit with the same data and the same integer random_state."
        )
