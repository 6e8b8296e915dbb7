"""What each fault did: one row per fault, the table and the closing line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    fault: str
    enrollments: int  # acknowledged by Kafka during this fault's test
    lost: int  # of those, without an exit
    duplicated: int  # of those, with more than one distinct exit id
    redelivered: int  # exit records beyond the first of their id, whole session (same id: harmless)
    stats_ok: bool  # the API's stats equal the brute-force count of the topics
    worst_latency_s: float  # goal acknowledged -> exit read, worst around the fault
    recovery_s: float  # fault -> the last exit delayed beyond the threshold
    threshold_s: float
    caught_up_s: float  # load stopped -> stats equal to the brute-force count
    notes: str


RESULTS: list[Row] = []


def render(rows: list[Row]) -> list[str]:
    header = (
        "fault",
        "enrollments",
        "lost",
        "dup ids",
        "redelivered",
        "stats",
        "worst",
        "recovery",
        "caught up",
        "notes",
    )
    table = [
        (
            r.fault,
            f"{r.enrollments:,}",
            str(r.lost),
            str(r.duplicated),
            str(r.redelivered),
            "equal" if r.stats_ok else "DIFFER",
            f"{r.worst_latency_s:.1f} s",
            f"{r.recovery_s:.1f} s (>{r.threshold_s:.1f} s)",
            f"{r.caught_up_s:.1f} s",
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *table]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lost = sum(r.lost for r in rows)  # each fault checks its own enrollments: disjoint
    duplicated = sum(r.duplicated for r in rows)
    lines.append(f"chaos: {len(rows)} faults, {lost} lost, {duplicated} duplicated")
    return lines
