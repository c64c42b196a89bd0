"""What the checks found (:class:`CheckReport`): by reason, the rows predicted to fail or to be
warned and their first places, and repeated keys; for the log, the plan and the summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api.fields import Problem, Verdict
from marketo_provider.sources.checks import RowProblems
from marketo_provider.sources.records import Location

EXAMPLES = 5  # locations kept per reason


@dataclass
class CheckReport:
    """What the checks found: by reason, the rows predicted to fail (Adobe shows such rows failing,
    or they may fail) and to be warned, with their first locations, and repeated keys.

    A row is counted under every reason it has (a failing value and an invalid email address: under
    both), and once in the totals: ``rows_failing`` (rows predicted to fail), ``rows_certain_to_fail``
    and ``rows_warned`` (rows with a warning that are not predicted to fail, since Marketo does not
    import those)."""

    records: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    repeated_keys: int = 0  # keys found on more than one row
    repeated_rows: int = 0  # rows whose key is on an earlier row
    repeated_examples: list[str] = field(default_factory=list)
    rows_failing: int = 0  # rows predicted to fail (or to possibly fail), each once
    rows_certain_to_fail: int = 0  # rows Adobe shows failing, each once
    rows_warned: int = 0  # rows predicted to be imported with a warning, each once

    def add(self, problems: Problem | RowProblems, where: Location | None) -> None:
        """Count one row's problems (a :class:`Problem` alone, or every problem of the row)."""
        row = problems if isinstance(problems, RowProblems) else RowProblems((problems,))
        reasons = set()
        for problem in row.problems:
            reason = self._reason(problem)
            if reason in reasons:
                continue
            reasons.add(reason)
            counts = self.warnings if problem.verdict is Verdict.WARNS else self.failures
            counts[reason] += 1
            self.verdicts.setdefault(reason, problem.verdict)
            self.expected.setdefault(reason, problem.expected)
            places = self.examples.setdefault(reason, [])
            if len(places) < EXAMPLES and where is not None:
                places.append(str(where))
        if row.verdict.predicted_failure:
            self.rows_failing += 1
            self.rows_certain_to_fail += row.certain
        else:
            self.rows_warned += 1

    def _reason(self, problem: Problem) -> str:
        """The problem's reason, as a reason has one verdict: should two problems of different
        verdicts share their words (two fields of one display name), the later is told apart."""
        known = self.verdicts.get(problem.reason)
        if known is None or known is problem.verdict:
            return problem.reason
        return f"{problem.reason} ({problem.verdict.value.replace('_', ' ')})"

    def lines(self) -> list[str]:
        """One line per reason, most frequent first, for the log and for messages."""
        out = []
        for reason, count in self.failures.most_common():
            verdict = "fail" if self.verdicts[reason] is Verdict.FAILS else "may fail"
            out.append(self._line(reason, count, verdict))
        for reason, count in self.warnings.most_common():
            out.append(self._line(reason, count, "warned"))
        if self.repeated_rows:
            out.append(
                f"{self.repeated_rows:,} rows repeat the key of an earlier row ({self.repeated_keys:,} keys), "
                f"e.g. {'; '.join(self.repeated_examples)}"
            )
        return out

    def _line(self, reason: str, count: int, verdict: str) -> str:
        expected = f", expected {self.expected[reason]}" if self.expected.get(reason) else ""
        return (
            f"{count:,} rows {verdict}: {reason}{expected} (e.g. {'; '.join(self.examples.get(reason, []))})"
        )

    def to_json(self) -> dict[str, Any]:
        """The plan's and the summary's ``row_checks``."""
        return {
            "records": self.records,
            "rows_predicted_to_fail": self.rows_failing,
            "rows_certain_to_fail": self.rows_certain_to_fail,
            "rows_predicted_warned": self.rows_warned,
            "failures": {
                reason: {
                    "rows": n,
                    "verdict": self.verdicts[reason].value,
                    "expected": self.expected.get(reason, ""),
                    "first": self.examples.get(reason, []),
                }
                for reason, n in self.failures.most_common()
            },
            "warnings": {
                reason: {"rows": n, "first": self.examples.get(reason, [])}
                for reason, n in self.warnings.most_common()
            },
            "repeated_keys": self.repeated_keys,
            "rows_repeating_a_key": self.repeated_rows,
            "repeated_key_examples": list(self.repeated_examples),
        }
