"""What every benchmark does around its phases: progress lines, exit codes, Ctrl-C, teardown.

:func:`run_guarded` runs the phases and turns how they ended into the exit code:

1. SIGTERM is made to act as Ctrl-C (KeyboardInterrupt), so both take the same way out;
2. the phases run: they return whether the run passed (0, else 1); a phase that raises is a
   failure (1), a local service (Kafka, PostgreSQL) that could not start is 2, an
   interruption is 130;
3. the teardown runs with SIGINT and SIGTERM ignored (a second Ctrl-C would leave
   orphans): ``before_teardown`` (e.g. read a child's memory while it still runs), then the
   caller's ``ExitStack``, which stops every process the run started, newest first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime

from goal_engine.devstack import DevstackError

log = logging.getLogger("goal_engine.bench")

EXIT_OK, EXIT_FAILED, EXIT_STACK, EXIT_INTERRUPTED = 0, 1, 2, 130


def progress(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')}  {message}", flush=True)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cancel_on_sigterm() -> None:
    """Inside ``asyncio.run``: SIGTERM cancels the main task (the loop owns the signal there)."""
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)


def run_guarded(
    phases: Callable[[], bool],
    resources: ExitStack,
    on_error: Callable[[str], None],
    before_teardown: Callable[[], None] | None = None,
) -> int:
    """Run ``phases`` (True: the run passed), close ``resources`` whatever happens; the exit code."""
    code = EXIT_FAILED
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        code = EXIT_OK if phases() else EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress("interrupted: stopping everything this run started…")
        code = EXIT_INTERRUPTED
        on_error("interrupted")
    except DevstackError as exc:
        log.error("%s", exc)
        code = EXIT_STACK
    except Exception as exc:
        log.exception("the benchmark failed")
        on_error(f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if before_teardown is not None:
            before_teardown()
        resources.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return code
