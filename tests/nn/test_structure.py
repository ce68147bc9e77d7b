"""Structure-preserving terms and the soft-target loss: hand values, gradchecks, invariances."""

import math

import pytest
import torch

from semiclip._nn import (
    CONTRASTIVE,
    LOSSES,
    anchor_loss,
    cka_loss,
    get_loss,
    infonce_loss,
    relational_loss,
    soft_cross_entropy,
    soft_infonce_loss,
)

S = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]], dtype=torch.float64)
T = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
# by hand: cos(s_i, t_j), cos(s_i, s_j) and cos(t_i, t_j)
COS = [[1.0, 0.0, -1.0], [0.6, 0.8, -0.6], [0.0, 1.0, 0.0]]
COS_SS = [[1.0, 0.6, 0.0], [0.6, 1.0, 0.8], [0.0, 0.8, 1.0]]
COS_TT = [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]


def _random(n=6, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, dtype=torch.float64, generator=gen)


def _orthogonal(d, seed=1):
    q, _ = torch.linalg.qr(_random(d, d, seed))
    return q


def _soft_ce(pred_row, target_row):
    """Cross-entropy of softmax(target_row) against softmax(pred_row), by hand."""
    zt = sum(math.exp(v) for v in target_row)
    zp = sum(math.exp(v) for v in pred_row)
    return -sum(math.exp(t) / zt * (p - math.log(zp)) for t, p in zip(target_row, pred_row))


# ------------------------------------------------------------- relational
def test_relational_hand_value():
    # differences |cos(s_i, s_j) - cos(t_i, t_j)|: 0.6, 1.0, 0.8 off the diagonal, twice each
    assert relational_loss(S, T).item() == pytest.approx(2 * (0.36 + 1.0 + 0.64) / 9, rel=1e-12)
    expected = sum((COS_SS[i][j] - COS_TT[i][j]) ** 2 for i in range(3) for j in range(3)) / 9
    assert relational_loss(S, T).item() == pytest.approx(expected, rel=1e-12)


def test_relational_is_zero_on_the_teacher_and_invariant_to_row_scales_and_rotations():
    s, t = _random(7, 4), _random(7, 5, seed=2)
    base = relational_loss(s, t).item()
    assert base > 0.05
    assert relational_loss(t, t).item() == pytest.approx(0.0, abs=1e-14)
    row_scale = torch.linspace(0.1, 9.0, 7, dtype=torch.float64)[:, None]
    assert relational_loss(s * row_scale, t / row_scale).item() == pytest.approx(base, rel=1e-12)
    assert relational_loss(s @ _orthogonal(4), t @ _orthogonal(5)).item() == pytest.approx(
        base, rel=1e-12)


def test_relational_gradcheck():
    t = _random(5, 3, seed=3)
    assert torch.autograd.gradcheck(lambda x: relational_loss(x, t), (_random(5, 4)
                                                                      .requires_grad_(True),))


# ----------------------------------------------------------------- anchor
def test_anchor_hand_value():
    start = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    # squared row distances of S from the start: 1, 0.36 + 0.64, 4; mean 2; over the scale 2
    assert anchor_loss(S, start, 2.0).item() == pytest.approx(1.0, rel=1e-12)
    assert anchor_loss(start, start, 3.0).item() == 0.0


def test_anchor_gradcheck_and_no_gradient_to_the_start():
    start = _random(5, 4, seed=4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: anchor_loss(x, start, 0.7),
                                    (_random(5, 4).requires_grad_(True),))
    anchor_loss(_random(5, 4).requires_grad_(True), start, 0.7).backward()
    assert start.grad is None


# -------------------------------------------------------------------- CKA
def test_cka_hand_value_and_centring():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)  # centred
    Y = torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    # Y^T X = [2, 1]: 5; ||X^T X||_F = ||[[2, 1], [1, 2]]||_F = sqrt(10); ||Y^T Y||_F = 2
    expected = 1.0 - 5.0 / (2.0 * math.sqrt(10.0))
    assert cka_loss(X, Y).item() == pytest.approx(expected, rel=1e-12)
    shifted = cka_loss(X + torch.tensor([3.0, -2.0], dtype=torch.float64), Y + 5.0)
    assert shifted.item() == pytest.approx(expected, rel=1e-12)


def test_cka_equals_the_gram_matrix_form():
    """Kornblith et al.'s identity: ||Y_c^T X_c||_F^2 = tr(K_X K_Y) with centred Grams."""
    x, y = _random(8, 3), _random(8, 20, seed=4)  # inputs wider than the rows: the Gram path
    h = torch.eye(8, dtype=torch.float64) - 1.0 / 8
    kx, ky = h @ x @ x.T @ h, h @ y @ y.T @ h
    hsic = torch.trace(kx @ ky) / torch.sqrt(torch.trace(kx @ kx) * torch.trace(ky @ ky))
    assert cka_loss(x, y).item() == pytest.approx(1.0 - hsic.item(), rel=1e-10)


def test_cka_invariances():
    x, y = _random(9, 4), _random(9, 6, seed=5)
    base = cka_loss(x, y).item()
    assert 0.05 < base < 1.0
    assert cka_loss(x, x).item() == pytest.approx(0.0, abs=1e-12)
    assert cka_loss(3.0 * x @ _orthogonal(4) + 7.0, x).item() == pytest.approx(0.0, abs=1e-12)
    assert cka_loss(0.01 * x, 250.0 * y).item() == pytest.approx(base, rel=1e-10)  # isotropic
    assert cka_loss(x @ _orthogonal(4), y @ _orthogonal(6, seed=6)).item() == pytest.approx(
        base, rel=1e-10)
    # linear CKA is not invariant to scaling single rows (unlike the relational term)
    rows = torch.linspace(0.2, 5.0, 9, dtype=torch.float64)[:, None]
    assert cka_loss(x * rows, y).item() != pytest.approx(base, rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cka_of_constant_rows_is_defined(dtype):
    """A side without spread (identical rows, one row, zeros) has CKA 0: the loss is 1, the
    gradient 0, never NaN; float32 rounding of the mean does not count as spread."""
    row = torch.tensor([0.1, 0.7, 1.3, -2.9], dtype=dtype)
    const = row.repeat(7, 1).requires_grad_(True)
    y = _random(7, 3).to(dtype).requires_grad_(True)
    zeros = torch.zeros(7, 4, dtype=dtype, requires_grad=True)
    one = y[:1].clone().requires_grad_(True)
    for student, inputs in [(const, y), (y, const), (const, const), (zeros, y), (one, one)]:
        value = cka_loss(student, inputs)
        assert value.item() == 1.0
        (grad,) = torch.autograd.grad(value, student, allow_unused=True)
        assert grad is None or (grad == 0).all()


def test_cka_gradcheck_on_both_sides():
    x, y = _random(6, 3).requires_grad_(True), _random(6, 4, seed=7).requires_grad_(True)
    assert torch.autograd.gradcheck(cka_loss, (x, y))
    wide = _random(4, 9, seed=8).requires_grad_(True)  # more columns than rows
    assert torch.autograd.gradcheck(cka_loss, (x[:4], wide))


# ------------------------------------------------------------ soft InfoNCE
def test_soft_infonce_is_a_registered_contrastive_loss():
    assert "soft_infonce" in LOSSES and "soft_infonce" in CONTRASTIVE
    assert get_loss("soft_infonce") is soft_infonce_loss


def test_soft_infonce_hand_value():
    tau, tau_t = 0.5, 1.0
    expected = sum(_soft_ce([c / tau for c in COS[i]], [c / tau_t for c in COS_TT[i]])
                   for i in range(3)) / 3
    got = soft_infonce_loss(S, T, torch.tensor([0, 1, 2]), 0.5, target_temperature=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # the target temperature defaults to the temperature
    same = sum(_soft_ce([c / tau for c in COS[i]], [c / tau for c in COS_TT[i]])
               for i in range(3)) / 3
    assert soft_infonce_loss(S, T, None, 0.5).item() == pytest.approx(same, rel=1e-12)


def test_soft_infonce_with_separate_candidates():
    cand = torch.cat([T, torch.tensor([[0.0, -1.0]], dtype=torch.float64)])
    # cos(s_1, [0,-1]) = -0.8, cos(s_2, [0,-1]) = -1; cos(t_1, [0,-1]) = -1, cos(t_2, .) = 0
    pred = [COS[1] + [-0.8], COS[2] + [-1.0]]
    target = [COS_TT[1] + [-1.0], COS_TT[2] + [0.0]]
    expected = (_soft_ce(pred[0], target[0]) + _soft_ce(pred[1], target[1])) / 2
    got = soft_cross_entropy(S[1:], cand, T[1:], cand, 1.0, 1.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_soft_infonce_tends_to_infonce_with_sharp_targets():
    """Distinct teachers and a near-zero target temperature: one-hot targets, InfoNCE."""
    s, t = _random(6, 3), _random(6, 3, seed=9)
    keys = torch.arange(6)
    sharp = soft_infonce_loss(s, t, keys, 0.3, target_temperature=1e-4)
    assert sharp.item() == pytest.approx(infonce_loss(s, t, keys, 0.3).item(), rel=1e-9)
    assert soft_infonce_loss(s, t, keys, 0.3).item() != pytest.approx(sharp.item(), rel=1e-3)


def test_soft_infonce_gives_rows_of_one_key_the_same_target():
    """Two rows paired with the same teacher row have identical targets: moving the student of
    one onto the other's makes their terms equal (no masking needed)."""
    t = _random(4, 3, seed=10)
    t[1] = t[0]
    s = _random(4, 3, seed=11)
    s[1] = s[0]
    per_row = [soft_cross_entropy(s[i:i + 1], t, t[i:i + 1], t, 0.4, 0.4).item()
               for i in range(4)]
    assert per_row[0] == pytest.approx(per_row[1], rel=1e-14)


def test_soft_infonce_gradcheck():
    t = _random(5, 3, seed=12)
    fn = get_loss("soft_infonce")
    s = _random(5, 3, seed=13).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: fn(x, t, None, 0.3, target_temperature=0.7), (s,))
