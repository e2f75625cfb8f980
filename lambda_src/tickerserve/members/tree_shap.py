"""Exact path-dependent TreeSHAP over a ``Forest``, in numpy.

What ``shap.TreeExplainer`` computes with ``feature_perturbation="tree_path_dependent"``
(Lundberg et al. 2020, Algorithm 2), reorganised over root-to-leaf paths as GPUTreeShap does
(Mitchell et al. 2022), so that every step is a whole-array operation:

1. Paths, enumerated once per member (on its first explanation): for every leaf, the
   features on its path with repeated features merged. A merged feature keeps the range of
   values that follows the path, ``(lower, upper]`` on the float32 value the trees compare,
   whether a missing value follows it, and its zero fraction: the product of
   ``cover(child) / cover(parent)`` over its splits. Paths are grouped by their number ``m``
   of distinct features, so nothing is padded.
2. Per row and group: the one fraction ``o`` of each element is 1 when the row follows it.
   Element i of a path with leaf value v gets ``v (o_i - z_i) S_i``, where ``S_i`` sums the
   Shapley-weighted products over the coalitions of the other elements. That weight is a
   Beta integral, so ``S_i = integral_0^1 prod_{j != i} (z_j (1 - u) + o_j u) du``: a
   polynomial of degree m - 1 in u, integrated exactly by ceil(m/2)-point Gauss-Legendre.
   Per quadrature node the factors form an (m, paths) array: the product over all elements
   divided by element i's own factor (factors are positive wherever covers are; groups with a
   zero cover take prefix and suffix products instead).
3. ``np.bincount`` adds each element's share onto its feature, per margin column.

The output is in the forest's margin space: XGBoost margins (base margin in the expected
value), gradient boosting raw scores (init included), a forest's averaged class
probabilities or values; ``expected + sum(phi) == margin`` up to rounding. Rows are compared
as float32, as the trees compare them. Matches shap's own double-precision algorithm to
about 1e-14 (tests/unit/members/test_tree_shap.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tickerserve.members.forest import Forest

CHUNK_ELEMENTS = 1 << 20  # paths x m x nodes per step: bounds each temporary to ~8 MiB
ENUMERATE_NODES = 1 << 16  # trees enumerated together: bounds the per-feature state


@dataclass(frozen=True)
class PathGroup:
    """All paths with ``m`` distinct features."""

    m: int
    feature: np.ndarray  # int32 (P, m)
    lower: np.ndarray  # float32 (P, m): the row follows when lower < x ...
    upper: np.ndarray  # float32 (P, m): ... and x <= upper
    nan_follows: np.ndarray  # bool (P, m): a missing x follows
    zero: np.ndarray  # float64 (P, m): zero fractions
    value: np.ndarray  # float64 (P, width): the leaf's output per margin column
    positive: bool  # every zero fraction > 0 (the division form applies)

    def part(self, start: int, stop: int) -> PathGroup:
        return PathGroup(
            self.m, self.feature[start:stop], self.lower[start:stop], self.upper[start:stop],
            self.nan_follows[start:stop], self.zero[start:stop], self.value[start:stop],
            self.positive,
        )  # fmt: skip


@dataclass(frozen=True)
class Paths:
    """A forest's root-to-leaf paths, grouped, and its expected value."""

    n_features: int
    width: int
    expected: np.ndarray  # (width,) the base every explanation starts from
    groups: list[PathGroup]

    @property
    def count(self) -> int:
        return sum(len(g.feature) for g in self.groups)


def enumerate_paths(forest: Forest) -> Paths:
    """Every root-to-leaf path of ``forest``, repeated features merged, grouped by length."""
    if not forest.has_cover:
        raise ValueError("the model kept no node covers: TreeSHAP needs them")
    outputs = forest.leaf_outputs()
    upper32 = forest.threshold32()
    found: list[tuple[np.ndarray, ...]] = []
    trees = np.arange(forest.n_trees)
    sizes = np.diff(np.append(forest.roots, forest.n_nodes))
    # Trees in batches of about ENUMERATE_NODES nodes: the state is (frontier x features).
    batch = np.cumsum(sizes) // ENUMERATE_NODES
    for b in np.unique(batch):
        found.extend(_walk(forest, forest.roots[trees[batch == b]].astype(np.intp), upper32))
    leaves, lower, upper, nan_follows, zero, used = (
        np.concatenate([f[i] for f in found]) for i in range(6)
    )
    lengths = used.sum(axis=1)
    groups = []
    expected = np.asarray(forest.base, dtype=np.float64).copy()
    for m in np.unique(lengths).tolist():
        chosen = lengths == m
        mask = used[chosen]
        shape = (int(chosen.sum()), m)
        columns = np.nonzero(mask)[1].reshape(shape)
        zeros = zero[chosen][mask].reshape(shape)
        values = outputs[leaves[chosen]]
        expected += (values * zeros.prod(axis=1)[:, None]).sum(axis=0)
        if m == 0:
            continue  # a one-leaf tree: it only adds to the expected value
        groups.append(
            PathGroup(
                m=m,
                feature=columns.astype(np.int32),
                lower=lower[chosen][mask].reshape(shape),
                upper=upper[chosen][mask].reshape(shape),
                nan_follows=nan_follows[chosen][mask].reshape(shape),
                zero=zeros,
                value=values,
                positive=bool(np.all(zeros > 0)),
            )
        )
    return Paths(forest.n_features, forest.width, expected, groups)


def _walk(forest: Forest, roots: np.ndarray, upper32: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Level by level from ``roots``: each frontier node carries dense per-feature state
    (range, NaN flag, zero fraction, used), its children copy it and tighten their split."""
    count, n_features = len(roots), forest.n_features
    nodes = roots
    lower = np.full((count, n_features), -np.inf, dtype=np.float32)
    upper = np.full((count, n_features), np.inf, dtype=np.float32)
    nan_follows = np.ones((count, n_features), dtype=bool)
    zero = np.ones((count, n_features))
    used = np.zeros((count, n_features), dtype=bool)
    done: list[tuple[np.ndarray, ...]] = []
    while len(nodes):
        leaf = forest.left[nodes] < 0
        if leaf.any():
            done.append((nodes[leaf], lower[leaf], upper[leaf], nan_follows[leaf], zero[leaf],
                         used[leaf]))  # fmt: skip
        inner = ~leaf
        parents = nodes[inner]
        if not len(parents):
            break
        feature = forest.feature[parents].astype(np.intp)
        threshold = upper32[parents]
        default_left = forest.default_left[parents]
        index = np.arange(len(parents))
        state = [a[inner] for a in (lower, upper, nan_follows, zero, used)]
        children = []
        for child, is_left in ((forest.left[parents], True), (forest.right[parents], False)):
            lo, hi, nan, z, u = (a.copy() for a in state)
            if is_left:  # x <= threshold
                hi[index, feature] = np.minimum(hi[index, feature], threshold)
                nan[index, feature] &= default_left
            else:
                lo[index, feature] = np.maximum(lo[index, feature], threshold)
                nan[index, feature] &= ~default_left
            with np.errstate(divide="ignore", invalid="ignore"):
                share = forest.cover[child] / forest.cover[parents]
            z[index, feature] *= np.where(forest.cover[parents] > 0, share, 0.0)
            u[index, feature] = True
            children.append((child.astype(np.intp), lo, hi, nan, z, u))
        nodes = np.concatenate([children[0][0], children[1][0]])
        lower, upper, nan_follows, zero, used = (
            np.concatenate([children[0][i], children[1][i]]) for i in range(1, 6)
        )
    return done


@functools.cache
def _gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """n-point Gauss-Legendre nodes and weights on [0, 1] (exact to degree 2n - 1)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return tuple(((x + 1.0) / 2.0).tolist()), tuple((w / 2.0).tolist())


def _coalitions(group: PathGroup, one: np.ndarray) -> np.ndarray:
    """(P, m) the Shapley-weighted sums over the other elements' coalitions."""
    if group.m == 1:
        return np.ones_like(one)  # no other element: the integral of 1
    nodes, weights = _gauss_legendre((group.m + 1) // 2)
    zero_t = np.ascontiguousarray(group.zero.T)  # (m, P): elements leading
    one_t = np.ascontiguousarray(one.T)
    total = np.zeros_like(zero_t)
    for u, w in zip(nodes, weights, strict=True):
        factors = zero_t * (1.0 - u)
        factors += one_t * u
        if group.positive:
            every = np.multiply.reduce(factors, axis=0)
            total += (w * every) / factors
        else:  # a zero factor: prefix[i] = prod_{j<i}, suffix[i] = prod_{j>i}
            ones = np.ones_like(factors[:1])
            prefix = np.cumprod(np.vstack([ones, factors[:-1]]), axis=0)
            suffix = np.cumprod(np.vstack([ones, factors[:0:-1]]), axis=0)[::-1]
            total += w * (prefix * suffix)
    return total.T


def shap_values(paths: Paths, row: np.ndarray) -> np.ndarray:
    """(n_features, width) contributions of one row (its float32 values are compared)."""
    x = np.asarray(row, dtype=np.float32)
    phi = np.zeros((paths.n_features, paths.width))
    for whole in paths.groups:
        step = max(1, CHUNK_ELEMENTS // (whole.m * ((whole.m + 1) // 2)))
        for start in range(0, len(whole.feature), step):
            group = whole if step >= len(whole.feature) else whole.part(start, start + step)
            values = x[group.feature]
            with np.errstate(invalid="ignore"):
                follows = (values > group.lower) & (values <= group.upper)
            missing = np.isnan(values)
            if missing.any():
                follows |= missing & group.nan_follows
            one = follows.astype(np.float64)
            share = (one - group.zero) * _coalitions(group, one)  # (P, m)
            features = group.feature.ravel()
            for column in range(paths.width):
                weights = (share * group.value[:, column : column + 1]).ravel()
                phi[:, column] += np.bincount(features, weights, minlength=paths.n_features)
    return phi
