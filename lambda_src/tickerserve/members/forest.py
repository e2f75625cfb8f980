"""A tree ensemble as flat node arrays: what the batch engines and the explanations share.

Every XGBoost and scikit-learn tree member (RandomForest, ExtraTrees, GradientBoosting)
becomes one ``Forest``: its trees' nodes concatenated (global node ids, children ``-1`` at
leaves), each node's split (feature, the library's own threshold and comparison, where a
missing value goes), its leaf outputs ready to add, and its cover (XGBoost's sum of
hessians, scikit-learn's weighted sample count), which path-dependent TreeSHAP needs.

Both libraries compare float32 inputs: XGBoost ``float32(x) < t`` with a float32 ``t``,
scikit-learn ``double(float32(x)) <= t`` with a float64 ``t`` (a midpoint that is often not
a float32 itself). ``threshold32`` turns either into one comparison, ``x <= t'`` with a
float32 ``t'``, exact for every float32 ``x`` (zeros, infinities and subnormals included).

The leaves add up as the original library adds them (``members.leaf_sum``):

- ``xgboost``: float32, from the base margin, tree after tree (tree ``t`` feeds margin
  column ``t % width``);
- ``forest`` (RandomForest, ExtraTrees): float64 leaf vectors (class probabilities, already
  normalised as ``predict_proba`` normalises them, or one value), summed in tree order and
  divided by the number of trees;
- ``boosting`` (GradientBoosting): float64, from the init estimator's raw score, adding each
  stage's ``learning_rate * value`` (the product rounded first, as scikit-learn's loop does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("xgboost", "forest", "boosting")


@dataclass(frozen=True)
class Forest:
    """Trees as concatenated node arrays (see the module docstring)."""

    family: str
    n_features: int
    width: int  # margin columns: 1 (binary, regression) or K classes (multiclass, forests)
    left: np.ndarray  # int32 (n_nodes,), global ids, -1 at leaves
    right: np.ndarray  # int32 (n_nodes,)
    feature: np.ndarray  # int32 (n_nodes,), -1 at leaves
    threshold: np.ndarray  # float64 (n_nodes,): the library's own threshold
    strict: bool  # True: left iff x < threshold (XGBoost); False: left iff x <= threshold
    default_left: np.ndarray  # bool (n_nodes,): where a missing value goes
    value: np.ndarray  # float64 (n_nodes, leaf_width): leaf outputs, 0 at inner nodes
    cover: np.ndarray  # float64 (n_nodes,); NaN where the model kept none
    roots: np.ndarray  # int32 (n_trees,): each tree's root; a tree's nodes follow its root
    base: np.ndarray  # float64 (width,): the starting margin (0 for forests)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    @property
    def nbytes(self) -> int:
        """Bytes its arrays hold."""
        arrays = (self.left, self.right, self.feature, self.threshold, self.default_left,
                  self.value, self.cover, self.roots, self.base)  # fmt: skip
        return sum(a.nbytes for a in arrays)

    @property
    def leaf_width(self) -> int:
        return int(self.value.shape[1])

    @property
    def tree_of_node(self) -> np.ndarray:
        """(n_nodes,) the tree each node belongs to."""
        sizes = np.diff(np.append(self.roots, self.n_nodes))
        return np.repeat(np.arange(self.n_trees), sizes)

    @property
    def has_cover(self) -> bool:
        """Whether every node's cover is known (TreeSHAP needs them all)."""
        return not np.isnan(self.cover).any()

    @property
    def column(self) -> np.ndarray:
        """(n_trees,) the margin column each tree adds to (forests: all of them)."""
        if self.family == "forest":
            return np.zeros(self.n_trees, dtype=np.intp)
        return np.arange(self.n_trees) % self.width

    def threshold32(self) -> np.ndarray:
        """float32 ``t'`` per node with ``x <= t'`` iff the original comparison, for every
        float32 ``x``: the largest float32 below ``t`` (strict) or not above it."""
        t = self.threshold
        with np.errstate(over="ignore"):
            f = t.astype(np.float32)
        above = f.astype(np.float64) >= t if self.strict else f.astype(np.float64) > t
        f[above] = np.nextafter(f[above], np.float32(-np.inf))
        return f

    def leaf_outputs(self) -> np.ndarray:
        """(n_nodes, width) what each leaf adds to each margin column (forests: its share of
        the average), the quantity TreeSHAP distributes."""
        if self.family == "forest":
            return self.value / self.n_trees
        out = np.zeros((self.n_nodes, self.width))
        out[np.arange(self.n_nodes), self.column[self.tree_of_node]] = self.value[:, 0]
        return out

    def validate(self) -> None:
        """Structural checks, so that no engine ever walks out of an array or in a circle;
        raise ``ValueError``."""
        n = self.n_nodes
        if self.family not in FAMILIES:
            raise ValueError(f"unknown tree family {self.family!r}")
        if n == 0 or self.n_trees == 0:
            raise ValueError("a forest needs at least one tree")
        for name in ("left", "right", "feature", "threshold", "default_left", "cover"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must hold one entry per node")
        if self.value.ndim != 2 or self.value.shape[0] != n or self.base.shape != (self.width,):
            raise ValueError("leaf values and base must match the nodes and the margin width")
        if self.family != "forest" and (self.leaf_width != 1 or self.n_trees % self.width):
            raise ValueError("boosted trees have one value per leaf and one tree per column")
        if self.family == "forest" and self.leaf_width != self.width:
            raise ValueError("a forest's leaves hold one value per margin column")
        roots = self.roots.astype(np.int64)
        if roots[0] != 0 or np.any(np.diff(roots) <= 0) or roots[-1] >= n:
            raise ValueError("tree roots must be increasing node ids")
        inner = self.left >= 0
        if np.any((self.right >= 0) != inner):
            raise ValueError("every inner node needs two children")
        ends = np.append(roots[1:], n)[self.tree_of_node]
        ids = np.arange(n)
        for child in (self.left[inner], self.right[inner]):
            # Children come after their parent and inside its tree: no cycle, no escape.
            if np.any(child <= ids[inner]) or np.any(child >= ends[inner]):
                raise ValueError("a child must follow its parent within the same tree")
        if np.any((self.feature[inner] < 0) | (self.feature[inner] >= self.n_features)):
            raise ValueError(f"split features must be below {self.n_features}")
        # +inf is a real split: scikit-learn sends every value left and missing ones right.
        if np.any(np.isnan(self.threshold[inner])):
            raise ValueError("split thresholds must be numbers")
        if not (np.all(np.isfinite(self.value)) and np.all(np.isfinite(self.base))):
            raise ValueError("leaf values must be finite")
        known = self.cover[~np.isnan(self.cover)]  # NaN: a model that kept no covers
        if not np.all(np.isfinite(known)) or np.any(known < 0):
            raise ValueError("covers must be finite and not negative")


def probe_rows(forest: Forest, n_rows: int = 64, seed: int = 0) -> np.ndarray:
    """Rows that walk many of the trees' branches: values on each feature's thresholds and
    one float32 step either side of them, values spread around, and missing values."""
    rng = np.random.default_rng(seed)
    inner = forest.left >= 0
    rows = rng.normal(scale=3.0, size=(n_rows, forest.n_features)).astype(np.float32)
    for j in range(forest.n_features):
        points = np.unique(forest.threshold[inner & (forest.feature == j)]).astype(np.float32)
        points = points[np.isfinite(points)]
        if not points.size:
            continue
        picked = rng.choice(points, size=n_rows)
        step = rng.integers(-1, 2, size=n_rows)
        picked = np.where(step < 0, np.nextafter(picked, np.float32(-np.inf)), picked)
        picked = np.where(step > 0, np.nextafter(picked, np.float32(np.inf)), picked)
        keep = rng.random(n_rows) < 0.75
        rows[keep, j] = picked[keep]
    rows[rng.random(rows.shape) < 0.05] = np.nan
    rows[0] = np.nan
    return rows.astype(np.float64)
