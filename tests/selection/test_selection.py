"""Tests for jest/policies/selection.py: exact sampling distributions, joint-vs-independent, the paper's contrastive case.

The distribution tests compare empirical subset frequencies with probabilities
computed here by brute-force enumeration, from the *definition* of each rule
(not from the module's code): within a chunk, successive draws without
replacement with p proportional to exp(logit / tau) among the remaining
candidates; between chunks, logit_i = M_ii + sum_{j in A} (M_ij + M_ji)
recomputed from scratch. Tolerance for each subset (and each item's inclusion
probability): |freq - p| <= 4.5 * sqrt(p (1 - p) / N) + 5e-4, N = 20,000 draws.
With the generators seeded the tests are deterministic; the 4.5-sigma band
makes a false failure unlikely under any seed (< 1e-4 per test), and the
`test_tolerance_has_power` test checks that the same band rejects plausible
wrong implementations (no logit update, one-sided update, reversed chunk
order, tau applied to the diagonal only, tau ignored).
"""
from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from jest.policies.selection import (
    chunk_sizes,
    interaction_matrix,
    joint_score,
    select_independent,
    select_independent_many,
    select_joint,
    select_joint_many,
    select_topk,
    sigmoid_learnability_matrix,
)

N_DRAWS = 20_000
SIGMA = 4.5
FLOOR = 5e-4

# A fixed 6 x 6 score matrix with asymmetric off-diagonal terms of the same
# order as the diagonal (rows: i, columns: j, entry M_ij).
M6 = np.array([
    [-0.08, 0.29, -0.63, 0.06, 0.53, -0.23],
    [1.30, -1.60, -0.04, -0.24, 0.20, -0.18],
    [0.73, 0.16, 0.57, 0.33, 0.21, 0.74],
    [-0.41, -1.32, 0.03, -0.07, 0.34, -0.69],
    [-0.96, 0.82, 0.06, -0.15, -0.96, 0.05],
    [0.53, 0.66, 0.45, -0.20, -0.86, 0.59],
])
S6 = np.diag(M6).copy()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- exact reference


def exact_subset_probs(M: np.ndarray, sizes: list[int], tau: float, *, update: str = "both",
                       tau_on_offdiag: bool = True) -> dict[frozenset, float]:
    """P(final subset) of chunked sampling, by enumerating every ordered sequence of draws.

    `update` / `tau_on_offdiag` select deliberately wrong variants for the power test.
    """
    B = M.shape[0]
    probs: dict[frozenset, float] = {}

    def logits(A: list[int]) -> np.ndarray:
        L = np.diag(M) / tau
        for j in A:
            pair = {"both": M[:, j] + M[j, :], "row": M[:, j], "none": 0.0 * M[:, j]}[update]
            L = L + pair / (tau if tau_on_offdiag else 1.0)
        return L

    def recurse(A: list[int], chunk: int, p: float) -> None:
        if chunk == len(sizes):
            key = frozenset(A)
            probs[key] = probs.get(key, 0.0) + p
            return
        L = logits(A)  # fixed within the chunk
        remaining = [i for i in range(B) if i not in A]
        for seq in itertools.permutations(remaining, sizes[chunk]):
            q, left = p, list(remaining)
            for i in seq:  # successive sampling without replacement
                q *= math.exp(L[i]) / np.exp(L[left]).sum()
                left.remove(i)
            recurse(A + list(seq), chunk + 1, q)

    recurse([], 0, 1.0)
    return probs


def inclusion_probs(probs: dict[frozenset, float], B: int) -> np.ndarray:
    inc = np.zeros(B)
    for s, p in probs.items():
        inc[list(s)] += p
    return inc


def frequencies(draws: torch.Tensor) -> Counter:
    return Counter(frozenset(row) for row in draws.tolist())


def band(p, n: int = N_DRAWS):
    return SIGMA * np.sqrt(np.asarray(p) * (1 - np.asarray(p)) / n) + FLOOR


def check_against(draws: torch.Tensor, probs: dict[frozenset, float], B: int) -> None:
    """Every subset's and every item's frequency within the stated band of the exact probability."""
    n = draws.shape[0]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    counts = frequencies(draws)
    assert set(counts) <= set(probs), "drew a subset of the wrong size or with repeats"
    for s, p in probs.items():
        f = counts.get(s, 0) / n
        assert abs(f - p) <= band(p, n), f"subset {sorted(s)}: freq {f:.4f} vs exact {p:.4f}"
    inc_exact = inclusion_probs(probs, B)
    inc_freq = np.bincount(draws.flatten().numpy(), minlength=B) / n
    assert np.all(np.abs(inc_freq - inc_exact) <= band(inc_exact, n)), (inc_freq, inc_exact)


def rejects(draws: torch.Tensor, probs: dict[frozenset, float]) -> bool:
    n = draws.shape[0]
    counts = frequencies(draws)
    return any(abs(counts.get(s, 0) / n - p) > band(p, n) for s, p in probs.items())


def valid_indices(idx: torch.Tensor, B: int, b: int) -> None:
    assert idx.dtype == torch.int64 and idx.shape == (b,)
    assert torch.equal(idx, torch.unique(idx))  # unique and sorted ascending
    assert 0 <= int(idx.min()) and int(idx.max()) < B


# --------------------------------------------------------------------------- 1. exact distributions


def test_chunk_sizes():
    assert chunk_sizes(32, 16) == [2] * 16
    assert chunk_sizes(3, 2) == [2, 1]           # the first b % n chunks are one larger
    assert chunk_sizes(10, 4) == [3, 3, 2, 2]
    assert chunk_sizes(3, 5) == [1, 1, 1]        # n_chunks > b -> b chunks of 1
    assert chunk_sizes(7, 1) == [7]


@pytest.mark.parametrize("n_chunks,tau", [(3, 1.0), (2, 1.0), (1, 1.0), (3, 0.5)])
def test_joint_matches_exact_distribution(n_chunks, tau):
    probs = exact_subset_probs(M6, chunk_sizes(3, n_chunks), tau)
    draws = select_joint_many(torch.tensor(M6), 3, n_chunks, tau, gen(10 + n_chunks), N_DRAWS)
    assert draws.shape == (N_DRAWS, 3) and draws.dtype == torch.int64
    assert torch.all(draws[:, 1:] > draws[:, :-1])  # unique, sorted ascending within rows
    check_against(draws, probs, 6)


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_independent_matches_exact_distribution(tau):
    probs = exact_subset_probs(np.diag(S6), [3], tau)  # one chunk on diag(s): successive sampling on s
    draws = select_independent_many(torch.tensor(S6), 3, tau, gen(20), N_DRAWS)
    check_against(draws, probs, 6)


def test_tolerance_has_power():
    """The band used above rejects plausible wrong rules (the same draws, other exact distributions)."""
    M = torch.tensor(M6)
    d3 = select_joint_many(M, 3, 3, 1.0, gen(13), N_DRAWS)
    assert not rejects(d3, exact_subset_probs(M6, [1, 1, 1], 1.0))
    assert rejects(d3, exact_subset_probs(M6, [1, 1, 1], 1.0, update="none"))  # = independent on diag
    assert rejects(d3, exact_subset_probs(M6, [1, 1, 1], 1.0, update="row"))   # M_ij without M_ji
    d2 = select_joint_many(M, 3, 2, 1.0, gen(12), N_DRAWS)
    assert not rejects(d2, exact_subset_probs(M6, [2, 1], 1.0))
    assert rejects(d2, exact_subset_probs(M6, [1, 2], 1.0))                    # chunk order reversed
    dt = select_joint_many(M, 3, 3, 0.5, gen(13), N_DRAWS)
    assert rejects(dt, exact_subset_probs(M6, [1, 1, 1], 0.5, tau_on_offdiag=False))
    assert rejects(dt, exact_subset_probs(M6, [1, 1, 1], 1.0))                 # tau ignored


def test_many_equals_successive_single_calls():
    """select_*_many row r is the r-th single call: the single-draw API is what the distribution tests test."""
    M = torch.tensor(M6)
    g = gen(5)
    singles = torch.stack([select_joint(M, 3, 2, 1.0, g) for _ in range(300)])
    assert torch.equal(select_joint_many(M, 3, 2, 1.0, gen(5), 300), singles)
    g = gen(6)
    singles = torch.stack([select_independent(torch.tensor(S6), 3, 0.7, g) for _ in range(300)])
    assert torch.equal(select_independent_many(torch.tensor(S6), 3, 0.7, gen(6), 300), singles)


def test_reproducible_and_valid():
    M = torch.randn(50, 50, generator=gen(0))
    a = select_joint(M, 12, 4, 1.0, gen(7))
    assert torch.equal(a, select_joint(M, 12, 4, 1.0, gen(7)))
    valid_indices(a, 50, 12)
    assert not all(torch.equal(a, select_joint(M, 12, 4, 1.0, gen(s))) for s in range(8, 12))
    s = M.diagonal().float()
    valid_indices(select_independent(s, 12, 1.0, gen(1)), 50, 12)
    valid_indices(select_topk(s, 12), 50, 12)
    assert torch.equal(select_joint(M, 50, 4, 1.0, gen(1)), torch.arange(50))  # b == B takes everything
    assert torch.equal(select_independent(s, 50, 1.0, gen(1)), torch.arange(50))


# --------------------------------------------------------------------------- 2. joint on diag(s) == independent


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_joint_on_diagonal_is_independent_exactly_with_one_chunk(dtype):
    s = torch.randn(40, generator=gen(1), dtype=dtype) * 2
    for seed in range(20):
        for tau in (0.3, 1.0, 4.0):
            ind = select_independent(s, 10, tau, gen(seed))
            assert torch.equal(select_joint(torch.diag(s), 10, 1, tau, gen(seed)), ind)
            assert torch.equal(select_joint(interaction_matrix(s, None, 0.0), 10, 1, tau, gen(seed)), ind)


def test_joint_on_diagonal_has_independent_distribution_with_chunks():
    exact = exact_subset_probs(np.diag(S6), [3], 1.0)
    joint = select_joint_many(torch.diag(torch.tensor(S6)), 3, 3, 1.0, gen(30), N_DRAWS)
    ind = select_independent_many(torch.tensor(S6), 3, 1.0, gen(31), N_DRAWS)
    check_against(joint, exact, 6)
    # two-sample check: both frequencies estimate the same p, so their difference has sd sqrt(2) * se
    fj, fi = frequencies(joint), frequencies(ind)
    for s, p in exact.items():
        assert abs(fj.get(s, 0) - fi.get(s, 0)) / N_DRAWS <= SIGMA * math.sqrt(2 * p * (1 - p) / N_DRAWS) + FLOOR


def test_more_chunks_than_items_means_chunks_of_one():
    M = torch.randn(30, 30, generator=gen(2))
    for seed in range(5):
        assert torch.equal(select_joint(M, 5, 50, 1.0, gen(seed)), select_joint(M, 5, 5, 1.0, gen(seed)))


# --------------------------------------------------------------------------- 3. top-k


def test_topk_correct_and_ties_to_lower_index():
    s = torch.tensor([0.5, 2.0, -1.0, 2.0, 0.5, 3.0, 0.5])
    assert select_topk(s, 1).tolist() == [5]
    assert select_topk(s, 3).tolist() == [1, 3, 5]
    assert select_topk(s, 4).tolist() == [0, 1, 3, 5]       # three-way tie at 0.5: index 0 wins
    assert select_topk(s, 5).tolist() == [0, 1, 3, 4, 5]
    assert select_topk(torch.zeros(10), 4).tolist() == [0, 1, 2, 3]
    x = torch.randn(200, generator=gen(3))
    assert set(select_topk(x, 20).tolist()) == set(torch.argsort(x, descending=True)[:20].tolist())
    assert select_topk(x, 20).dtype == torch.int64


def test_independent_tends_to_topk_as_tau_goes_to_zero():
    x = torch.randn(100, generator=gen(4))  # distinct scores; the smallest gap is ~1e-4
    top = select_topk(x, 25)
    for seed in range(20):
        assert torch.equal(select_independent(x, 25, 1e-9, gen(seed)), top)
        assert torch.equal(select_joint(torch.diag(x), 25, 5, 1e-9, gen(seed)), top)
    # ... and at tau = 1 it does not
    assert not all(torch.equal(select_independent(x, 25, 1.0, gen(s)), top) for s in range(5))


# --------------------------------------------------------------------------- 4. the paper's contrastive case


def planted_contrastive(seed: int, B: int = 64, D: int = 32, n_clusters: int = 8, hard: int = 2):
    """Reference: every pair well aligned and separated. Learner: `hard` clusters of B / n_clusters examples
    collapsed onto near-identical embeddings (their negatives are confused: large positive off-diagonal
    learnability within a cluster), the rest spread out; per-example misalignment gives diagonal variation."""
    g = gen(seed)
    ref_img = torch.randn(B, D, generator=g)
    ref_txt = ref_img + 0.1 * torch.randn(B, D, generator=g)
    cluster = torch.arange(B) % n_clusters
    centers = torch.randn(n_clusters, D, generator=g)
    spread = torch.where(cluster < hard, 0.1, 3.0)[:, None]
    l_img = centers[cluster] + spread * torch.randn(B, D, generator=g)
    l_txt = l_img + torch.rand(B, 1, generator=g) * spread * torch.randn(B, D, generator=g)
    return sigmoid_learnability_matrix(l_img, l_txt, ref_img, ref_txt), cluster, hard


def test_joint_beats_independent_on_contrastive_learnability():
    # Measured (seed 0, 200 draws, tau = 1): independent 19.8; joint with 1/2/4/8/16 chunks
    # 20.2 / 21.8 / 26.1 / 28.8 / 30.8 (se ~0.2-0.8); over seeds 0-5 the 16-chunk gain is +10 to +14.
    M, cluster, hard = planted_contrastive(0)
    B, b, n, tau = 64, 16, 200, 1.0
    in_hard = cluster < hard
    off = ~torch.eye(B, dtype=torch.bool)
    hard_pairs = (cluster[:, None] == cluster[None, :]) & in_hard[:, None] & off
    # the planted structure: confused negatives within a collapsed cluster, ~0 elsewhere off the diagonal
    assert M[hard_pairs].mean() > 0.4 and M[~hard_pairs & off].abs().mean() < 0.05

    ind = joint_score(M, select_independent_many(M.diagonal(), b, tau, gen(1), n))
    by_chunks = {}
    for n_chunks in (1, 2, 4, 8, 16):
        by_chunks[n_chunks] = joint_score(M, select_joint_many(M, b, n_chunks, tau, gen(2), n))
    mean = {k: v.mean().item() for k, v in by_chunks.items()}
    se = {k: v.std().item() / math.sqrt(n) for k, v in by_chunks.items()}
    se_ind = ind.std().item() / math.sqrt(n)

    # JEST's claim in miniature: joint sampling (16 chunks, as in the paper) finds far more learnable batches.
    assert mean[16] > ind.mean().item() + 8.0
    assert mean[16] - ind.mean().item() > 6 * math.hypot(se[16], se_ind)
    # one chunk samples on the diagonal only: independent in distribution
    assert abs(mean[1] - ind.mean().item()) < 4 * math.hypot(se[1], se_ind)
    # more chunks -> more conditioning on what is chosen -> higher joint score: clearly for 1 < 4 < 16,
    # and no step of the chain 1, 2, 4, 8, 16 goes down beyond noise
    for lo, hi in ((1, 4), (4, 16)):
        assert mean[hi] - mean[lo] > 4 * math.hypot(se[hi], se[lo]), (lo, hi, mean)
    for lo, hi in ((1, 2), (2, 4), (4, 8), (8, 16)):
        assert mean[hi] - mean[lo] > -3 * math.hypot(se[hi], se[lo]), (lo, hi, mean)
    # and it does so by picking the collapsed clusters' examples together
    hard_joint = in_hard[select_joint_many(M, b, 16, tau, gen(3), n)].sum(1).float().mean()
    hard_ind = in_hard[select_independent_many(M.diagonal(), b, tau, gen(3), n)].sum(1).float().mean()
    assert hard_joint > hard_ind + 1.5


def test_sigmoid_learnability_matrix_definition():
    g = gen(8)
    li, lt, ri, rt = (torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(4))
    t, bias = 7.0, -3.0
    M = sigmoid_learnability_matrix(li, lt, ri, rt, t=t, bias=bias)

    def loss(img, txt, i, j):
        x = float(img[i] @ txt[j] / (img[i].norm() * txt[j].norm()))
        z = 1.0 if i == j else -1.0
        return -math.log(1.0 / (1.0 + math.exp(-z * (t * x + bias))))

    for i in range(5):
        for j in range(5):
            assert M[i, j].item() == pytest.approx(loss(li, lt, i, j) - loss(ri, rt, i, j), abs=1e-12)
    # embeddings are normalised inside: rescaling rows changes nothing
    scale = torch.rand(5, 1, generator=g, dtype=torch.float64) + 0.5
    assert torch.allclose(sigmoid_learnability_matrix(li * scale, lt * 3, ri, rt * scale, t=t, bias=bias), M)
    # identical learner and reference: zero learnability
    assert torch.equal(sigmoid_learnability_matrix(li, lt, li, lt), torch.zeros(5, 5, dtype=torch.float64))


def test_joint_score():
    M = torch.randn(9, 9, generator=gen(9), dtype=torch.float64)
    idx = torch.tensor([1, 4, 7])
    brute = sum(M[i, j].item() for i in (1, 4, 7) for j in (1, 4, 7))
    assert joint_score(M, idx).item() == pytest.approx(brute, abs=1e-12)
    many = torch.tensor([[1, 4, 7], [0, 2, 3]])
    assert torch.allclose(joint_score(M, many), torch.stack([joint_score(M, r) for r in many]))
    assert joint_score(torch.diag(torch.arange(9.0)), idx).item() == 12.0


# --------------------------------------------------------------------------- 5. interaction matrix


def test_interaction_matrix():
    s = torch.randn(12, generator=gen(10))
    for M in (interaction_matrix(s, None, 0.7), interaction_matrix(s, torch.randn(12, 4), 0.0)):
        assert torch.equal(M, torch.diag(s)) and M.dtype == s.dtype and M.device == s.device
    s64 = s.double()
    assert interaction_matrix(s64, None, 1.0).dtype == torch.float64

    feats = torch.randn(12, 16, generator=gen(11))
    feats[3] = 5 * feats[2]                      # same direction -> cosine 1
    lam = 0.37
    M = interaction_matrix(s, feats, lam)
    assert M.shape == (12, 12) and M.dtype == s.dtype
    assert torch.equal(M.diagonal(), s)          # diagonal untouched, exactly
    C = (M - torch.diag(s)) / lam
    assert torch.equal(C, C.T) and torch.all(C.diagonal() == 0)
    f = feats / feats.norm(dim=1, keepdim=True)
    expected = f @ f.T
    off = ~torch.eye(12, dtype=torch.bool)
    assert torch.allclose(C[off], expected[off], atol=1e-5)
    assert C[2, 3].item() == pytest.approx(1.0, abs=1e-5)
    assert C.abs().max() <= 1.0 + 1e-5
    # a zero feature row has similarity 0 to everything (no NaN)
    feats[0] = 0
    assert torch.all(interaction_matrix(s, feats, lam)[0, 1:] == 0)


def test_interaction_steers_joint_selection():
    """lam > 0 gathers similar examples, lam < 0 spreads them (planted group of 10 identical feature rows).

    Measured (500 draws, B = 40, b = 8, scores all 0): group members per sub-batch, independent 1.94;
    joint lam = +1: 4.12; lam = -1: 1.14. Summed pairwise similarity: 3.5 / 29.0 / -5.0.
    """
    B, b, n = 40, 8, 500
    s = torch.zeros(B)
    feats = torch.randn(B, 8, generator=gen(12))
    group = torch.arange(B) < 10
    feats[group] = torch.tensor([1.0] + [0.0] * 7)
    C = interaction_matrix(s, feats, 1.0)
    ind = select_independent_many(s, b, 1.0, gen(13), n)
    similar = select_joint_many(interaction_matrix(s, feats, 1.0), b, 8, 1.0, gen(13), n)
    diverse = select_joint_many(interaction_matrix(s, feats, -1.0), b, 8, 1.0, gen(13), n)
    members = {k: group[v].sum(1).float().mean().item() for k, v in
               (("ind", ind), ("similar", similar), ("diverse", diverse))}
    assert members["similar"] > members["ind"] + 1.5
    assert members["diverse"] < members["ind"] - 0.5
    sim = {k: joint_score(C, v).mean().item() for k, v in (("ind", ind), ("similar", similar), ("diverse", diverse))}
    assert sim["similar"] > sim["ind"] + 15 and sim["diverse"] < sim["ind"] - 5


# --------------------------------------------------------------------------- 6. validation


def test_input_validation():
    s = torch.randn(8)
    M = torch.randn(8, 8)
    g = gen(0)
    with pytest.raises(ValueError, match="exceeds"):
        select_topk(s, 9)
    with pytest.raises(ValueError, match=">= 1"):
        select_topk(s, 0)
    with pytest.raises(ValueError, match="exceeds"):
        select_independent(s, 9, 1.0, g)
    with pytest.raises(ValueError, match=">= 1"):
        select_independent(s, -1, 1.0, g)
    for tau in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            select_independent(s, 3, tau, g)
        with pytest.raises(ValueError, match="tau"):
            select_joint(M, 3, 2, tau, g)
    with pytest.raises(ValueError, match="square"):
        select_joint(torch.randn(8, 7), 3, 2, 1.0, g)
    with pytest.raises(ValueError, match="square"):
        select_joint(s, 3, 2, 1.0, g)
    with pytest.raises(ValueError, match="exceeds"):
        select_joint(M, 9, 2, 1.0, g)
    with pytest.raises(ValueError, match=">= 1"):
        select_joint(M, 0, 2, 1.0, g)
    with pytest.raises(ValueError, match="n_chunks"):
        select_joint(M, 3, 0, 1.0, g)
    with pytest.raises(TypeError, match="integer"):
        select_joint(M, 2.5, 2, 1.0, g)
    with pytest.raises(ValueError, match="NaN or infinite"):
        select_joint(torch.full((4, 4), float("nan")), 2, 2, 1.0, g)
    with pytest.raises(ValueError, match="NaN or infinite"):
        select_topk(torch.tensor([1.0, float("inf")]), 1)
    with pytest.raises(ValueError, match="1-D"):
        select_independent(M, 3, 1.0, g)
    with pytest.raises(ValueError, match="overflow"):
        select_independent(torch.tensor([1e300, 0.0], dtype=torch.float64), 1, 1e-10, g)
    with pytest.raises(TypeError, match="generator"):
        select_joint(M, 3, 2, 1.0, 0)
    with pytest.raises(ValueError, match="num_draws"):
        select_joint_many(M, 3, 2, 1.0, g, 0)
    with pytest.raises(ValueError, match="square"):
        joint_score(torch.randn(3, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="out of range"):
        joint_score(M, torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="features"):
        interaction_matrix(s, torch.randn(7, 3), 1.0)
    with pytest.raises(ValueError, match="batch size"):
        sigmoid_learnability_matrix(torch.randn(4, 3), torch.randn(4, 3), torch.randn(5, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        sigmoid_learnability_matrix(torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 3), torch.randn(4, 3))


# --------------------------------------------------------------------------- GPU (where there is one)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda():
    dev = torch.device("cuda")
    M = torch.tensor(M6, device=dev)
    s = M.diagonal().float().contiguous()
    for seed in range(5):
        gi = torch.Generator(device=dev).manual_seed(seed)
        gj = torch.Generator(device=dev).manual_seed(seed)
        ind = select_independent(s, 3, 1.0, gi)
        assert ind.device.type == "cuda"
        assert torch.equal(select_joint(torch.diag(s), 3, 1, 1.0, gj), ind)
    draws = select_joint_many(M, 3, 3, 1.0, torch.Generator(device=dev).manual_seed(1), N_DRAWS)
    check_against(draws.cpu(), exact_subset_probs(M6, [1, 1, 1], 1.0), 6)
    with pytest.raises(ValueError, match="generator"):
        select_joint(M, 3, 2, 1.0, gen(0))  # a CPU generator for a CUDA matrix
