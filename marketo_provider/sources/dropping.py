"""A stage that keeps records out of what is sent: a :class:`Body` without the records whose
ordinals it is given (rows pre-flight predicts Marketo will fail, with ``on_invalid_rows="skip"``;
rows whose key is on a later row, with ``on_repeated_keys="keep_last"``).

Its offsets are those of what it hands on, so parts, resuming and the places of records work on
it as on any source.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from marketo_provider.sources.base import (
    NEWLINE,
    OUT_CHUNK,
    QUOTE,
    Body,
    Piece,
    SourceError,
    Where,
    copy_into,
)
from marketo_provider.sources.quotes import count_records, last_boundary, record_end


@dataclass(frozen=True)
class _Dropped:
    start: int  # inner offsets of the record left out
    end: int
    newlines: int
    at: int  # the offset (in what is handed on) where it would have been


def runs_of(ordinals: Iterable[int]) -> Iterator[tuple[int, int]]:
    """The runs ``(first, end)`` of increasing ``ordinals``: every ordinal from ``first`` up to
    ``end`` (not included), the runs in order."""
    first = end = None
    for o in ordinals:
        if o == end:
            end += 1
            continue
        if first is not None:
            yield first, end  # type: ignore[misc]
        first, end = o, o + 1
    if first is not None:
        yield first, end  # type: ignore[misc]


class DroppingBody:
    """``inner`` (read from its start) without the records ``drops`` names (ordinals from 0, in
    increasing order; a blank line is a record), or the ``runs`` of them (``(first, end)``: every
    ordinal from ``first`` up to ``end``, not included, the runs in order): a run is left out with
    the same few steps whatever its length."""

    def __init__(
        self,
        inner: Body,
        drops: Iterable[int] | None = None,
        *,
        runs: Iterator[tuple[int, int]] | None = None,
        start: tuple[int, int, int] | None = None,
    ) -> None:
        """``start=(offset, inner_offset, ordinal)`` carries on where an earlier part ended: at
        ``offset`` of what is handed on, which is ``inner_offset`` of ``inner`` and the record of
        ``ordinal`` (``drops`` or ``runs`` then name ordinals from there on)."""
        offset, inner_offset, ordinal = start if start is not None else (0, 0, 0)
        if start is not None and inner_offset:
            inner.skip_to(inner_offset)
        if inner.tell() != inner_offset:
            raise SourceError("records can only be left out of a source read from its start")
        self._inner = inner
        self._runs = runs if runs is not None else runs_of(drops or ())
        self._run = next(self._runs, None)  # the next run left out (its first ordinal not yet read)
        self._carry = bytearray()  # inner bytes read and not yet split into records
        self._carry_at = inner_offset  # inner offset of carry[0]
        self._ordinal = ordinal  # ordinal of the first record in carry
        self._out = b""
        self._out_at = 0
        self._pos = offset  # offset of the next byte handed on
        self._eof = False
        self._dropped: deque[_Dropped] = deque()  # records left out at or after the last part asked about
        self._shift = inner_offset - offset  # bytes of the records left out before those
        self.records_dropped = 0

    # -- reading

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        while self._out_at >= len(self._out):
            if not self._refill():
                return 0
        n = copy_into(buffer, self._out, self._out_at)
        self._out_at += n
        self._pos += n
        return n

    def _refill(self) -> bool:
        if self._eof and not self._carry:
            return False
        if not self._eof:
            chunk = bytearray(OUT_CHUNK)
            n = self._inner.readinto(memoryview(chunk)) or 0
            self._eof = n == 0
            self._carry += chunk[:n]
        carry = self._carry
        end = len(carry) if self._eof else last_boundary(carry, 0, len(carry))
        if end == 0:
            return not self._eof or bool(carry)
        records = count_records(carry, 0, end) + (1 if carry[end - 1] != NEWLINE[0] else 0)
        start_pos = self._pos + (len(self._out) - self._out_at)
        run = self._run
        if run is None or run[0] >= self._ordinal + records:
            out = bytes(carry[:end])
        elif carry.find(QUOTE, 0, end) < 0:
            out = self._leave_out_lines(bytes(carry[:end]), records, start_pos)
        else:
            kept = bytearray()
            at = 0
            ordinal = self._ordinal
            while at < end:
                stop = record_end(carry, at)
                stop = end if stop < 0 or stop > end else stop
                if run is not None and ordinal >= run[0]:
                    self._note_dropped(
                        self._carry_at + at,
                        self._carry_at + stop,
                        carry.count(NEWLINE, at, stop),
                        start_pos + len(kept),
                    )
                    if ordinal + 1 >= run[1]:
                        run = next(self._runs, None)
                else:
                    kept += carry[at:stop]
                at = stop
                ordinal += 1
            self._run = run
            out = bytes(kept)
        self._ordinal += records
        self._carry_at += end
        del carry[:end]
        self._out = self._out[self._out_at :] + out
        self._out_at = 0
        return True

    def _leave_out_lines(self, data: bytes, records: int, start_pos: int) -> bytes:
        """The records of ``data`` (no quotes: a record a line) less those left out, found with a
        split in C; each run of records left out is noted once, in a few steps whatever its length."""
        lines = data.split(NEWLINE)
        lengths = list(accumulate(map(len, lines)))  # record i starts at lengths[i - 1] + i

        def starts(i: int) -> int:
            """Where record ``i`` starts (``records``: the data's end)."""
            return len(data) if i >= records else (lengths[i - 1] + i if i else 0)

        first = self._ordinal
        kept: list[bytes] = []
        sent = start_pos  # where the next kept byte goes in what is handed on
        done = 0  # the next record not yet kept or left out
        run = self._run
        while run is not None and run[0] < first + records:
            a = run[0] - first
            if run[1] <= first + records:
                b = run[1] - first
                run = next(self._runs, None)
            else:  # the run goes on past this data
                b = records
                run = (first + records, run[1])
            start = starts(a)
            if a > done:
                kept.append(data[starts(done) : start])
                sent += len(kept[-1])
            stop = starts(b)
            newlines = data.count(NEWLINE, start, stop)
            self._note_dropped(self._carry_at + start, self._carry_at + stop, newlines, sent, b - a)
            done = b
        self._run = run
        if done < records:
            kept.append(data[starts(done) :])
        return b"".join(kept)

    def _note_dropped(self, start: int, end: int, newlines: int, at: int, records: int = 1) -> None:
        """A run of records left out (one with the run just before it when they touch)."""
        last = self._dropped[-1] if self._dropped else None
        if last is not None and last.at == at and last.end == start:
            self._dropped[-1] = _Dropped(last.start, end, last.newlines + newlines, at)
        else:
            self._dropped.append(_Dropped(start, end, newlines, at))
        self.records_dropped += records

    def skip_to(self, offset: int) -> None:
        scratch = memoryview(bytearray(OUT_CHUNK))
        while self._pos < offset:
            if not self.readinto(scratch[: min(len(scratch), offset - self._pos)]):
                raise SourceError(
                    f"the source ends before byte {offset:,} of the records sent: it changed since earlier "
                    "parts were submitted"
                )

    # -- saying where

    def _inner_offset(self, offset: int) -> int:
        """The inner offset of the byte handed on at ``offset`` (records left out just before it
        are skipped over)."""
        shift = self._shift
        for d in self._dropped:
            if d.at <= offset:
                shift += d.end - d.start
            else:
                break
        return offset + shift

    def inner_offset(self, offset: int) -> int:
        """The inner offset where what is handed on from ``offset`` (the end of the part just cut)
        carries on: past the records left out right there."""
        return self._inner_offset(offset)

    def pieces(self, start: int, end: int) -> list[Piece]:
        """The files and content bytes of what is handed on from ``start`` to ``end``: a piece per
        run of records sent, so the records left out inside the stretch are not in any piece
        (``content_start`` is the true place in the file; ``start``/``end`` are offsets of what is
        handed on)."""
        while self._dropped and self._dropped[0].at < start:
            first = self._dropped.popleft()
            self._shift += first.end - first.start
        out: list[Piece] = []
        at = start
        shift = self._shift
        for d in self._dropped:
            if d.at >= end:
                break
            if d.at > at:
                out += self._inner_pieces(at, d.at, shift)
            shift += d.end - d.start
            at = d.at
        if end > at:
            out += self._inner_pieces(at, end, shift)
        return out

    def _inner_pieces(self, start: int, end: int, shift: int) -> list[Piece]:
        return [
            replace(p, start=p.start - shift, end=p.end - shift)
            for p in self._inner.pieces(start + shift, end + shift)
        ]

    def where(self, offset: int) -> Where | None:
        return self._inner.where(self._inner_offset(offset))

    def quote_problem(self) -> SourceError | None:
        return self._inner.quote_problem()
