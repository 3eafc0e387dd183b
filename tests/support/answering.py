"""A process of another environment's settings, kept running and asked one thing at a time.

A test that must look at a stack's database (or ask a page with other settings) used to start a Django process
for every look: a second and a half of start-up each time, several times in a fault run. ``Answering`` starts
one and keeps it, as a web server or a Celery worker keeps its connections: each question is a JSON line on its
standard input, each answer a line of its own on its standard output after ``ANSWER``. Between questions the
process lets go of connections that broke or grew old (``close_old_connections``, as Django does between
requests and Celery between tasks), so a database restarted under it is reached again.

The other side, in the child process: ``serve(answer)``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ANSWER = "@answer "


class Answering:
    """``argv`` (a Python program that calls ``serve``) running in ``env`` from ``cwd``."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv, cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.said: list[str] = []  # what it printed besides its answers: its log lines, a traceback
        # Its lines as they come (None when it exits), read by a thread of their own: a pipe read line by line
        # holds lines in Python's buffer, where waiting on the pipe itself would not see them.
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, question: Any, *, timeout: float = 120) -> Any:
        """The process's answer; raises with what it said when it failed, exited or did not answer in time."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(question) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: its last line is on its way
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.lines.put(None)  # for the next question, which gets no answer either
                break
            if line.startswith(ANSWER):
                done = json.loads(line.removeprefix(ANSWER))
                if "error" in done:
                    raise AnswerFailed(f"{question!r} failed:\n{done['error']}\nwhat it said before:\n{self.tail()}")
                return done["answer"]
            self.said.append(line)
        raise NoAnswer(f"no answer to {question!r} within {timeout} s from {self.argv}:\n{self.tail()}")

    def tail(self) -> str:
        return "".join(self.said)[-4000:]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class AnswerFailed(AssertionError):
    """What the kept process said when a question failed, for the test's failure to show."""


class NoAnswer(AnswerFailed):
    """The kept process exited, or did not answer in time."""


def serve(answer: Callable[[Any], Any]) -> None:
    """In the kept process, once Django is set up: ``answer`` each question until standard input closes."""
    from django.db import close_old_connections

    for line in sys.stdin:
        close_old_connections()
        try:
            done = {"answer": answer(json.loads(line))}
        except Exception:
            done = {"error": traceback.format_exc()}
        print(ANSWER + json.dumps(done), flush=True)
