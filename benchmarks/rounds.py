"""Interleaved rounds: per-round ours/peer ratios, reported as their median and spread."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Paired:
    """One measure taken for both sides in each round (seconds)."""

    name: str
    goal: float | None = None  # the ratio to stay at or under, when there is one
    labels: tuple[str, str] = ("ours", "peer")
    ours: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)

    def add(self, ours: float, peer: float) -> None:
        self.ours.append(ours)
        self.peer.append(peer)

    @property
    def ratios(self) -> list[float]:
        return [o / p for o, p in zip(self.ours, self.peer, strict=True)]

    def lines(self) -> list[str]:
        """Every round, then the median ratio with its spread (min-max over the rounds)."""
        out = [f"{self.name}:"]
        for i, (o, p, r) in enumerate(zip(self.ours, self.peer, self.ratios, strict=True), 1):
            out.append(f"  round {i}: {self.labels[0]} {o:7.2f} s  {self.labels[1]} {p:7.2f} s  ratio {r:.2f}x")
        ratios = self.ratios
        goal = f" (goal <= {self.goal}x)" if self.goal is not None else ""
        out.append(
            f"  median ratio {statistics.median(ratios):.2f}x, spread {min(ratios):.2f}-{max(ratios):.2f}x "
            f"over {len(ratios)} rounds; medians {self.labels[0]} {statistics.median(self.ours):.2f} s, "
            f"{self.labels[1]} {statistics.median(self.peer):.2f} s{goal}"
        )
        return out
