"""Sub-batch selection rules over per-example scores (DESIGN.md, "The JEST algorithm").

Pure functions of tensors (CPU or GPU): they hold no state, and every random
draw goes through the `torch.Generator` passed in, so a seeded generator makes
a selection reproducible. Every selector returns int64 indices, unique and
sorted ascending (positions into the super-batch of B candidates).

    select_topk          deterministic top-b (RHO-LOSS style)
    select_independent   b draws without replacement, p_i ~ exp(s_i / tau)
    select_joint         JEST blocked sampling on a B x B score matrix M
                         (Algorithm 1 of Evans et al. 2024, arXiv 2406.17711)
    select_*_many        many independent draws at once, (num_draws, b)

plus the matrices the joint sampler runs on:

    sigmoid_learnability_matrix  the paper's contrastive case: pairwise SigLIP
                                 losses of learner minus reference
    interaction_matrix           the LM adaptation: diag(scores) + lam * cosine
                                 similarity of per-example features
    joint_score                  sum of M over the chosen S x S block

Sampling without replacement uses the Gumbel-top-k trick (Vieira 2014; Kool,
van Hoof & Welling 2019): the indices of the k largest `logits / tau + G`, with
G i.i.d. standard Gumbel, are distributed exactly as k successive draws without
replacement, each with probability proportional to exp(logit / tau) among the
items not yet drawn (the Plackett-Luce / successive-sampling distribution).
"""
from __future__ import annotations

import math
import operator

import torch
from torch import Tensor

__all__ = [
    "chunk_sizes",
    "interaction_matrix",
    "joint_score",
    "select_independent",
    "select_independent_many",
    "select_joint",
    "select_joint_many",
    "select_topk",
    "sigmoid_learnability_matrix",
]

# Internal working precision of the samplers. The running joint logits are sums
# of up to b * (b - 1) pairwise terms; float64 keeps that accumulation (and
# logits / tau for small tau) exact enough that the sampler is reproducible
# across devices. B is a super-batch (hundreds to a few thousand), so the cost
# of float64 is negligible next to the scoring forward passes.
_WORK_DTYPE = torch.float64


# --------------------------------------------------------------------------- validation


def _check_count(b, name: str = "b") -> int:
    if isinstance(b, bool):
        raise TypeError(f"{name} must be an integer, got {b!r}")
    try:
        return operator.index(b)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {b!r}") from None


def _check_scores(scores: Tensor) -> None:
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (one score per candidate), got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got dtype {scores.dtype}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contain NaN or infinite values")


def _check_matrix(M: Tensor) -> None:
    if not isinstance(M, Tensor):
        raise TypeError(f"M must be a torch.Tensor, got {type(M).__name__}")
    if M.dim() != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be a square B x B matrix, got shape {tuple(M.shape)}")
    if not M.is_floating_point():
        raise ValueError(f"M must be a floating-point tensor, got dtype {M.dtype}")
    if not bool(torch.isfinite(M).all()):
        raise ValueError("M contains NaN or infinite values")


def _check_b(b, B: int) -> int:
    b = _check_count(b)
    if b < 1:
        raise ValueError(f"b (the sub-batch size) must be >= 1, got {b}")
    if b > B:
        raise ValueError(f"b (the sub-batch size) = {b} exceeds the number of candidates B = {B}")
    return b


def _check_tau(tau) -> float:
    try:
        tau = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a positive number, got {tau!r}") from None
    if not tau > 0 or tau == float("inf"):  # also rejects NaN
        raise ValueError(f"tau (the sampling temperature) must be positive and finite, got {tau}")
    return tau


def _check_num_draws(num_draws) -> int:
    num_draws = _check_count(num_draws, "num_draws")
    if num_draws < 1:
        raise ValueError(f"num_draws must be >= 1, got {num_draws}")
    return num_draws


def _check_generator(generator, device: torch.device) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device.type} but the scores are on {device.type}: "
                         "create the generator with torch.Generator(device=scores.device)")


# --------------------------------------------------------------------------- helpers


def chunk_sizes(b: int, n_chunks: int) -> list[int]:
    """Sizes of the JEST chunks: min(n_chunks, b) chunks, as equal as possible, summing to b.

    When b is not a multiple of the number of chunks, the *first* b % n chunks
    get one extra item (numpy.array_split's convention). The order matters for
    the distribution of the joint sampler, so it is fixed here, in one place.
    """
    b = _check_count(b)
    n_chunks = _check_count(n_chunks, "n_chunks")
    if b < 1:
        raise ValueError(f"b (the sub-batch size) must be >= 1, got {b}")
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    n = min(n_chunks, b)
    q, r = divmod(b, n)
    return [q + 1 if k < r else q for k in range(n)]


def _gumbel(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """i.i.d. standard Gumbel noise, G = -log(-log U), drawn from `generator`.

    U is clamped away from 0 so that G is always finite (torch.rand is in
    [0, 1), so U = 1 never occurs); a -inf key could otherwise tie with the
    masked-out candidates of select_joint. The clamp changes the distribution
    only on an event of probability ~1e-308.
    """
    u = torch.rand(shape, generator=generator, device=device, dtype=_WORK_DTYPE)
    u.clamp_(min=torch.finfo(_WORK_DTYPE).tiny)
    return -torch.log(-torch.log(u))


def _check_scaled(bound: Tensor) -> None:
    # Logits are divided by tau once, up front; a tau so small that they (or
    # their running sums) overflow float64 would turn keys into inf / NaN and
    # break the masking of chosen items, so it is refused rather than clamped.
    if not bool(torch.isfinite(bound)):
        raise ValueError("scores / tau overflow float64: tau is too small for the scale of the scores")


# --------------------------------------------------------------------------- selectors


def select_topk(scores: Tensor, b: int) -> Tensor:
    """Indices of the b highest scores, sorted ascending; ties go to the lower index.

    Deterministic (RHO-LOSS / "hard" selection). torch.topk does not specify
    which of equal values it returns, so a *stable* descending sort is used:
    equal scores keep their original (index) order, the lower index first.
    """
    _check_scores(scores)
    b = _check_b(b, scores.shape[0])
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:b].sort().values.to(torch.int64)


def select_independent(scores: Tensor, b: int, tau: float, generator: torch.Generator) -> Tensor:
    """b indices drawn without replacement with p_i proportional to exp(s_i / tau).

    The draws are successive (Plackett-Luce): each next index is drawn with
    probability exp(s_i / tau) / sum_{k not yet drawn} exp(s_k / tau). This is
    implemented with the Gumbel-top-k trick, topk(s / tau + G), consuming
    exactly B uniforms from `generator` -- the same stream select_joint consumes
    when it has a single chunk, so that select_joint(diag(s), n_chunks=1)
    returns the very same indices as this function for the same generator state.
    """
    return select_independent_many(scores, b, tau, generator, 1)[0]


def select_independent_many(scores: Tensor, b: int, tau: float, generator: torch.Generator,
                            num_draws: int) -> Tensor:
    """`num_draws` independent draws of select_independent at once: a (num_draws, b) int64 tensor.

    Row r consumes the r-th block of B uniforms, so on CPU it equals the r-th of
    `num_draws` successive select_independent calls on the same generator.
    """
    _check_scores(scores)
    b = _check_b(b, scores.shape[0])
    tau = _check_tau(tau)
    n = _check_num_draws(num_draws)
    _check_generator(generator, scores.device)
    scaled = scores.to(_WORK_DTYPE) / tau
    _check_scaled(scaled.abs().max())
    keys = scaled + _gumbel((n, scores.shape[0]), generator, scores.device)
    return torch.topk(keys, b, dim=1).indices.sort(dim=1).values.to(torch.int64)


def select_joint(M: Tensor, b: int, n_chunks: int, tau: float, generator: torch.Generator) -> Tensor:
    """JEST joint example selection: blocked sampling of b of B candidates on a score matrix M.

    Algorithm 1 of Evans et al. 2024 (arXiv 2406.17711), "Joint example
    selection": the joint score of a sub-batch S is sum_{i,j in S} M_ij, and the
    sub-batch is grown in `n_chunks` chunks (blocked, Gibbs-like sampling). With
    A the set chosen so far, chunk k draws its items without replacement from
    the candidates not in A, with conditional logits

        logit_i = M_ii + sum_{j in A} (M_ij + M_ji)

    i.e. the increase of the joint score if i were added to A. The first chunk
    (A empty) thus samples on the diagonal alone. Within a chunk the logits are
    fixed and the draw is successive sampling with p ~ exp(logit / tau)
    (Gumbel-top-k on logit / tau, restricted to the candidates not in A);
    between chunks they are updated. The paper uses tau = 1.

    Chunk sizes are `chunk_sizes(b, n_chunks)`: min(n_chunks, b) chunks as equal
    as possible, the first b % n one item larger.

    Relation to select_independent: when M = diag(s) the logits never change.
    Successive Gumbel-top-k draws in chunks with *fixed* logits and fresh noise
    on the remaining items have the same distribution as one Gumbel-top-k of
    size b: the first k1 items of a Plackett-Luce ordering are a Plackett-Luce
    draw, and given them the rest of the ordering is Plackett-Luce on the
    remaining items, whatever the order within the first chunk. So select_joint
    on diag(s) is distributed exactly as select_independent(s) for any
    n_chunks; with n_chunks == 1 it consumes the generator identically and
    returns the identical indices. Nothing is special-cased for diagonal M.

    Cost: O(B^2) once (M + M^T), then per chunk O(B) for the draw and
    O(B * chunk) for the incremental logit update: O(B^2) in all, within the
    O(n_chunks * B^2) budget. Per-call time is dominated by torch's per-op
    overhead (a dozen small ops per chunk), not by arithmetic.
    """
    return select_joint_many(M, b, n_chunks, tau, generator, 1)[0]


def select_joint_many(M: Tensor, b: int, n_chunks: int, tau: float, generator: torch.Generator,
                      num_draws: int) -> Tensor:
    """`num_draws` independent draws of select_joint at once: a (num_draws, b) int64 tensor.

    Each row draws all its noise up front, one block of n * B uniforms
    (n = min(n_chunks, b) chunks), so on CPU row r equals the r-th of
    `num_draws` successive select_joint calls on the same generator (on CUDA,
    Philox offsets make that hold in distribution only). Useful to estimate
    selection probabilities, and what select_joint itself runs on.
    """
    _check_matrix(M)
    B = M.shape[0]
    b = _check_b(b, B)
    n_chunks = _check_count(n_chunks, "n_chunks")
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    tau = _check_tau(tau)
    n = _check_num_draws(num_draws)
    _check_generator(generator, M.device)

    sizes = chunk_sizes(b, n_chunks)
    # One uniform per candidate per chunk (those of already-chosen candidates
    # are discarded). With one chunk this is exactly select_independent's draw.
    noise = _gumbel((n, len(sizes), B), generator, M.device)
    # Work on M / tau throughout: the logits are linear in M, so scaling once
    # up front equals scaling every chunk's logits, and saves an op per chunk.
    Mt = M.to(_WORK_DTYPE) / tau
    # Adding item j to A adds M_ij + M_ji to every other candidate's logit;
    # with the symmetrised matrix precomputed each update is one row gather-sum:
    # logits += M[:, new].sum(1) + M[new, :].sum(0) == (M + M^T)[new].sum(0).
    sym = Mt + Mt.T
    diag = Mt.diagonal()
    # |running logit_i| <= (|M_ii| + sum_j |M_ij + M_ji|) / tau: if that is finite, no key can overflow.
    _check_scaled(diag.abs().max() + sym.abs().sum(1).max())
    logits = diag.expand(n, B).clone()  # running logits; stale for chosen items, which are masked
    chosen = torch.zeros((n, B), dtype=torch.bool, device=M.device)
    for c, k in enumerate(sizes):
        keys = logits + noise[:, c]
        keys.masked_fill_(chosen, float("-inf"))  # keys of the others are finite: chosen items are never redrawn
        new = torch.topk(keys, k, dim=1).indices  # (n, k)
        chosen.scatter_(1, new, True)
        if c + 1 < len(sizes):
            # Incremental update, O(B * k) per draw: only the pairs with the new items are added.
            logits += sym[new].sum(1)
    # Each row of `chosen` holds exactly b Trues; nonzero() is row-major, hence sorted within rows.
    return chosen.nonzero()[:, 1].view(n, b).to(torch.int64)


# --------------------------------------------------------------------------- matrices


def joint_score(M: Tensor, idx: Tensor) -> Tensor:
    """Joint score of the sub-batch S = idx: sum_{i,j in S} M_ij.

    `idx` may be (k,) -> a scalar, or (n, k) -> n joint scores (one per row).
    """
    _check_matrix(M)
    idx = torch.as_tensor(idx, device=M.device)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.dim() not in (1, 2):
        raise ValueError(f"idx must be an integer tensor of shape (k,) or (n, k), got {idx.dtype} {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= M.shape[0]):
        raise ValueError(f"idx out of range for a {M.shape[0]} x {M.shape[0]} matrix")
    idx = idx.long()
    return M[idx.unsqueeze(-1), idx.unsqueeze(-2)].sum((-2, -1))


def interaction_matrix(scores: Tensor, features: Tensor | None, lam: float) -> Tensor:
    """Score matrix for causal LMs: M = diag(scores) + lam * C.

    The next-token loss decomposes per example, so with M = diag(s) joint
    selection is exactly independent selection (DESIGN.md). C injects an
    explicit batch interaction: the cosine similarity of the rows of
    `features` (B x D, e.g. mean-pooled final hidden states), with a zero
    diagonal so that diag(M) == scores exactly. lam > 0 favours sub-batches of
    mutually similar examples, lam < 0 favours diverse ones.

    lam == 0 or features None -> exactly diag(scores) (scores' dtype/device).
    Otherwise the result has scores' dtype, computed in at least float32.
    """
    _check_scores(scores)
    lam = float(lam)
    if not math.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam}")
    if features is None or lam == 0.0:
        return torch.diag(scores)
    B = scores.shape[0]
    if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[0] != B:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be a B x D tensor with B = {B} (one row per candidate), got {shape}")
    if features.device != scores.device:
        raise ValueError(f"features are on {features.device} but scores are on {scores.device}")
    work = torch.promote_types(torch.promote_types(scores.dtype, features.dtype), torch.float32)
    f = features.to(work)
    if not bool(torch.isfinite(f).all()):
        raise ValueError("features contain NaN or infinite values")
    f = f / f.norm(dim=1, keepdim=True).clamp_min(torch.finfo(work).eps)  # a zero row -> similarity 0
    C = f @ f.T
    C = 0.5 * (C + C.T)  # a matmul is not guaranteed bitwise symmetric; C must be
    C.fill_diagonal_(0.0)
    M = (lam * C).to(scores.dtype)
    M.diagonal().copy_(scores)  # exact: the diagonal is the per-example score, untouched
    return M


def _siglip_pair_losses(img: Tensor, txt: Tensor, t: float, bias: float) -> Tensor:
    """L_ij = -log sigmoid(z_ij (t <img_i, txt_j> + bias)), z = +1 on the diagonal, -1 off it."""
    img = torch.nn.functional.normalize(img, dim=-1)
    txt = torch.nn.functional.normalize(txt, dim=-1)
    logits = t * (img @ txt.T) + bias
    z = 2.0 * torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device) - 1.0
    return torch.nn.functional.softplus(-z * logits)  # -log sigmoid(x) == softplus(-x), stable


def sigmoid_learnability_matrix(learner_img: Tensor, learner_txt: Tensor, ref_img: Tensor, ref_txt: Tensor,
                                t: float = 10.0, bias: float = -10.0) -> Tensor:
    """The paper's contrastive learnability matrix (SigLIP loss), learner minus reference.

    For each model the pairwise sigmoid loss of image i against text j is
    L_ij = -log sigmoid(z_ij * (t * <img_i, txt_j> + bias)), z_ij = +1 if i == j
    else -1, on L2-normalised embeddings (B x D; D may differ between learner
    and reference). M = L_learner - L_reference; the learnability of a
    sub-batch S, the quantity JEST samples on, is sum_{i,j in S} M_ij
    (`joint_score`). The defaults t = 10, bias = -10 are SigLIP's initial
    temperature and bias.
    """
    pairs = {"learner": (learner_img, learner_txt), "reference": (ref_img, ref_txt)}
    B = None
    for name, (img, txt) in pairs.items():
        for part, x in (("img", img), ("txt", txt)):
            if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
                raise ValueError(f"{name} {part} embeddings must be a floating-point B x D tensor")
        if img.shape != txt.shape:
            raise ValueError(f"{name} image and text embeddings differ in shape: "
                             f"{tuple(img.shape)} vs {tuple(txt.shape)}")
        if B is not None and img.shape[0] != B:
            raise ValueError(f"learner and reference embeddings differ in batch size: {B} vs {img.shape[0]}")
        B = img.shape[0]
    L_learner = _siglip_pair_losses(learner_img, learner_txt, float(t), float(bias))
    L_ref = _siglip_pair_losses(ref_img, ref_txt, float(t), float(bias))
    return L_learner - L_ref.to(L_learner.dtype)
