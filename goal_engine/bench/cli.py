"""What the benchmarks' command lines share: argument types and the common flags."""

from __future__ import annotations

import argparse
import logging

from goal_engine.core.logging import configure_logging


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def bench_parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A parser that prints ``description`` and ``epilog`` as written (phases, exit codes, examples)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_progress_every(group: argparse._ArgumentGroup, during: str) -> None:
    group.add_argument(
        "--progress-every",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help=f"interval of the progress lines during {during} (default: %(default)s)",
    )


def add_log_level(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the bench's own log lines on stderr (default: %(default)s)",
    )


def start_logging(level: str, process: str) -> None:
    """The bench's own log lines, as text on stderr; httpx's one line per request left out."""
    configure_logging(level, "text", process=process)
    logging.getLogger("httpx").setLevel(logging.WARNING)
