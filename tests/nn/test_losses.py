"""Losses: hand-computed values on tiny examples, masking, and gradient checks."""

import math

import pytest
import torch

from semiclip._nn import (
    clip_loss,
    get_loss,
    infonce_loss,
    kd_cosine_loss,
    kd_mse_loss,
    masked_cross_entropy,
    siglip_loss,
)

S = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]], dtype=torch.float64)
T = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
# cosine similarities cos(s_i, t_j), computed by hand:
COS = [[1.0, 0.0, -1.0], [0.6, 0.8, -0.6], [0.0, 1.0, 0.0]]


def _ce(row, target, masked=()):
    terms = [math.exp(v) for j, v in enumerate(row) if j not in masked]
    return -row[target] + math.log(sum(terms))


def test_infonce_hand_value():
    tau = 0.5
    expected = sum(_ce([c / tau for c in COS[i]], i) for i in range(3)) / 3
    got = infonce_loss(S, T, torch.tensor([0, 1, 2]), temperature=tau)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_infonce_masks_same_key_rows_as_false_negatives():
    tau = 0.5
    keys = torch.tensor([0, 0, 1])  # rows 0 and 1 share a key
    expected = (
        _ce([c / tau for c in COS[0]], 0, masked=(1,))
        + _ce([c / tau for c in COS[1]], 1, masked=(0,))
        + _ce([c / tau for c in COS[2]], 2)
    ) / 3
    got = infonce_loss(S, T, keys, temperature=tau)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_infonce_is_scale_invariant():
    keys = torch.tensor([0, 1, 2])
    base = infonce_loss(S, T, keys, 0.1)
    assert infonce_loss(3 * S, 0.5 * T, keys, 0.1).item() == pytest.approx(base.item())


def test_infonce_is_one_sided():
    """Each student row is contrasted with the teacher rows only: moving one student row
    changes its own term and no other (symmetric CLIP also contrasts students)."""
    tau = 0.5
    keys = torch.tensor([0, 1, 2])
    moved = S.clone()
    moved[1] = torch.tensor([5.0, -3.0], dtype=torch.float64)
    r = math.sqrt(34.0)
    new_row = [5 / r / tau, -3 / r / tau, -5 / r / tau]  # cos(moved s_1, t_j) / tau, by hand
    old_row = [c / tau for c in COS[1]]
    change = (_ce(new_row, 1) - _ce(old_row, 1)) / 3
    got = infonce_loss(moved, T, keys, tau) - infonce_loss(S, T, keys, tau)
    assert got.item() == pytest.approx(change, rel=1e-12)
    sym = clip_loss(moved, T, keys, tau) - clip_loss(S, T, keys, tau)
    assert sym.item() != pytest.approx(0.5 * change, rel=1e-3)  # CLIP's other side moved too
    # gradients reach the student only through its own rows' terms
    s = S.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(infonce_loss(s, T, keys, tau), s)
    (grad_own,) = torch.autograd.grad(
        masked_cross_entropy(s[:1], T, keys[:1], keys, torch.tensor([0]), tau) / 3, s)
    torch.testing.assert_close(grad[0], grad_own[0])


def test_clip_hand_value():
    tau = 1.0
    cols = [[COS[i][j] for i in range(3)] for j in range(3)]
    forward = sum(_ce(COS[i], i) for i in range(3)) / 3
    backward = sum(_ce(cols[j], j) for j in range(3)) / 3
    got = clip_loss(S, T, torch.tensor([0, 1, 2]), temperature=tau)
    assert got.item() == pytest.approx(0.5 * (forward + backward), rel=1e-12)


def test_siglip_hand_value():
    tau = 0.5
    keys = [0, 0, 1]
    total = 0.0
    for i in range(3):
        for j in range(3):
            z = (COS[i][j] - 1.0) / tau
            sign = 1.0 if keys[i] == keys[j] else -1.0
            total += math.log1p(math.exp(-sign * z))
    got = siglip_loss(S, T, torch.tensor(keys), temperature=tau)
    assert got.item() == pytest.approx(total / 3, rel=1e-12)


def test_kd_hand_values():
    expected_cos = sum(1 - COS[i][i] for i in range(3)) / 3
    assert kd_cosine_loss(S, T).item() == pytest.approx(expected_cos)
    expected_mse = sum((S[i, k] - T[i, k]).item() ** 2 for i in range(3) for k in range(2)) / 6
    assert kd_mse_loss(S, T).item() == pytest.approx(expected_mse)


def test_masked_cross_entropy_with_separate_candidates():
    # two queries against four candidates (e.g. negatives gathered from another rank)
    cand = torch.cat([T, torch.tensor([[0.0, -1.0]], dtype=torch.float64)])
    cand_keys = torch.tensor([0, 1, 2, 0])
    q_keys = torch.tensor([1, 2])
    pos = torch.tensor([1, 2])
    tau = 1.0
    cos_extra = [-0.8, -1.0]  # cos(s_1, [0,-1]), cos(s_2, [0,-1])
    rows = [COS[1] + [cos_extra[0]], COS[2] + [cos_extra[1]]]
    expected = (_ce(rows[0], 1) + _ce(rows[1], 2)) / 2
    got = masked_cross_entropy(S[1:], cand, q_keys, cand_keys, pos, tau)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["infonce", "clip", "siglip", "kd", "kd_mse"])
def test_gradcheck(name):
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    t = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    keys = torch.tensor([0, 1, 1, 2, 3])
    fn = get_loss(name)
    assert torch.autograd.gradcheck(lambda x: fn(x, t, keys, 0.3), (s,))


def test_unknown_loss():
    with pytest.raises(ValueError, match="Unknown loss 'foo'"):
        get_loss("foo")


# ------------------------------------------------------------- the loss objects
def test_every_loss_is_one_registered_object_with_its_kind():
    from semiclip._nn import CONTRASTIVE, LOSSES, loss_object

    assert LOSSES == ("infonce", "clip", "siglip", "kd", "kd_mse", "soft_infonce")
    assert CONTRASTIVE == ("infonce", "clip", "siglip", "soft_infonce")
    for name in LOSSES:
        loss = loss_object(name)
        assert loss.name == name and get_loss(name) is loss.function
    # what the papers say of each: contrastive over the minibatch, on cosine similarities,
    # needing every rank's students (CLIP's teacher -> student half only)
    assert {n for n in LOSSES if loss_object(n).cosine} == set(LOSSES) - {"kd_mse"}
    assert {n for n in LOSSES if loss_object(n).gathers_students} == {"clip"}
    with pytest.raises(ValueError, match=r"Unknown loss 'foo'; choose one of \('infonce'"):
        loss_object("foo")


def test_a_loss_name_is_registered_once():
    from semiclip._nn import Loss, register

    class Again(Loss):
        name = "infonce"

    with pytest.raises(ValueError, match="A loss named 'infonce' is already registered"):
        register(Again)


@pytest.mark.parametrize("name", ["infonce", "clip", "siglip", "kd", "kd_mse", "soft_infonce"])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_ranks_shares_average_to_the_whole_loss(name, world):
    """Rank r holds rows r, r + world, ...: the mean of the ranks' shares is the loss of the
    whole minibatch (what DDP's gradient averaging relies on), 7 rows so that ranks differ."""
    from semiclip._nn import loss_object

    gen = torch.Generator().manual_seed(1)
    s = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    t = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    keys = torch.tensor([0, 1, 1, 2, 3, 3, 4])
    loss = loss_object(name)
    shares = [loss.local(s[r::world], t, keys, torch.arange(r, 7, world), world, 0.3, 0.3,
                         gathered=s) for r in range(world)]
    whole = loss.value(s, t, keys, 0.3, 0.3)
    assert (sum(shares) / world).item() == pytest.approx(whole.item(), rel=1e-12)


def test_held_out_values_against_the_centroids_by_hand():
    """Two held-out rows scored against three key centroids (rows of T)."""
    from semiclip._nn import loss_object

    tau, codes, cand = 0.5, torch.tensor([1, 2]), torch.arange(3)
    rows = [[c / tau for c in COS[i]] for i in (1, 2)]
    infonce = (_ce(rows[0], 1) + _ce(rows[1], 2)) / 2  # each row's own key is the positive
    for name in ("infonce", "clip", "siglip"):  # every contrastive loss: key retrieval
        got = loss_object(name).held_out(S[1:], T, codes, cand, tau)
        assert got.item() == pytest.approx(infonce, rel=1e-12)
    kd = (1 - COS[1][1] + 1 - COS[2][2]) / 2  # the loss itself against the own key's centroid
    assert loss_object("kd").held_out(S[1:], T, codes, cand, tau).item() == pytest.approx(kd)
