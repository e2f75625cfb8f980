"""Count, mean and sum of squared deviations of a stream, merged batch by batch.

Chan et al.'s pairwise update keeps the variance exact to rounding however the stream is cut,
where ``sum(x**2) - sum(x)**2 / n`` loses every digit for values far from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean

    def add(self, values: np.ndarray) -> None:
        """Merge a batch of values."""
        count = int(values.size)
        if count == 0:
            return
        mean = float(np.mean(values))
        m2 = float(np.sum((values - mean) ** 2))
        self.merge(Moments(count, mean, m2))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.mean += delta * other.n / n
        self.n = n

    @property
    def sum(self) -> float:
        return self.mean * self.n

    def variance(self, ddof: int = 0) -> float:
        """Population variance (``ddof=0``) or sample variance (``ddof=1``)."""
        if self.n - ddof <= 0:
            return float("nan")
        return self.m2 / (self.n - ddof)

    def to_list(self) -> list[float]:
        return [self.n, self.mean, self.m2]
