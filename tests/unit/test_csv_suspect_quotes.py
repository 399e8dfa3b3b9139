"""The vectorised pre-check of CsvLines against a plain Python statement of the same rule, on generated blocks.

The rule (csv_lines module docstring): a quote is suspect when neither side is innocent (the delimiter, a quote or a
line break; on the left the escape character too), or when its line holds an odd number of quotes that are not
escaped. The numpy version skips the per-quote work when every line's count is even, which is what these tests
probe: odd lines anywhere in a block, at its start, on its last line with or without a line feed, with counts past
255 (the per-line sums are bytes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats.csv_lines import _FeedOffsets, _long_line_starts, _may_hold_long_line, _SuspectQuotes

QUOTE, DELIMITER, ESCAPE = ord('"'), ord(","), ord("\\")
BLOCKS = st.lists(st.sampled_from(b'"",\n\r\\ab'), min_size=0, max_size=400).map(bytes)


def reference(data: bytes, escape: int | None) -> list[int]:
    innocent = {DELIMITER, QUOTE, 10, 13}
    found = set()
    for i in range(1, len(data) - 1):
        left_innocent = data[i - 1] in innocent or (escape is not None and data[i - 1] == escape)
        if data[i] == QUOTE and not left_innocent and data[i + 1] not in innocent:
            found.add(i)
    start = 0
    for line in data.split(b"\n"):
        quotes = [
            start + j
            for j, byte in enumerate(line)
            if byte == QUOTE and not (escape is not None and start + j > 0 and data[start + j - 1] == escape)
        ]
        if len(quotes) % 2:
            found.update(quotes)
        start += len(line) + 1
    return sorted(found) if len(data) >= 3 else []


def suspects(data: bytes, escape: int | None) -> list[int]:
    return [int(i) for i in _SuspectQuotes(QUOTE, DELIMITER, escape)(data, _FeedOffsets())]


@settings(max_examples=400, deadline=None)
@given(BLOCKS, st.sampled_from([None, ESCAPE]))
def test_suspect_quotes_follow_the_rule(data: bytes, escape: int | None) -> None:
    assert suspects(data, escape) == reference(data, escape)


def test_a_line_with_257_quotes_is_odd_although_its_byte_sum_wraps() -> None:
    line = b"a" + b'"' * 257 + b"a\n"
    data = b'x,"y"\n' + line + b'"z"\n'
    assert suspects(data, None) == reference(data, None)
    assert suspects(data, None)  # the open line is found


def test_an_open_quote_on_a_last_line_without_a_line_feed_is_found() -> None:
    data = b'1,"a"\n2,"b'
    assert suspects(data, None) == [8]


def test_feed_offsets_are_found_again_for_a_new_block() -> None:
    feeds = _FeedOffsets()
    first = bytearray(b"a\nb\n")
    assert feeds(first).tolist() == [1, 3]
    assert feeds(b"ab\n").tolist() == [2]
    feeds.forget()
    assert feeds(first).tolist() == [1, 3]


# Lines of up to 150 bytes: blocks of several 64-byte words, with lines and quoted values across their boundaries,
# for the bit-parallel parity of `_any_odd_line`.
LINES = st.lists(st.lists(st.sampled_from(b'"ab,,,"xyz'), max_size=150).map(bytes), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(LINES, st.booleans(), st.sampled_from([None, ESCAPE]))
def test_open_quotes_are_found_in_blocks_of_many_words(
    lines: list[bytes], ends_with_feed: bool, escape: int | None
) -> None:
    data = b"\n".join(lines) + (b"\n" if ends_with_feed else b"")
    assert suspects(data, escape) == reference(data, escape)


def test_a_line_across_words_is_even_with_an_odd_word_before_its_end() -> None:
    """The running parity crosses words: the first word ends after 63 quotes (odd), the line closes evenly with the
    64th in the next word; the next line is open."""
    data = b'"' * 63 + b'x"\n' + b'b"c\n'
    assert suspects(data, None) == reference(data, None) == [67]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=12), st.integers(10, 200))
def test_a_block_said_to_hold_no_long_line_holds_none(lengths: list[int], longest: int) -> None:
    data = b"".join(b"x" * length + b"\n" for length in lengths)
    if not _may_hold_long_line(data, longest):
        assert _long_line_starts(len(data), _FeedOffsets()(data), longest) == []


@settings(max_examples=300, deadline=None)
@given(BLOCKS, st.sampled_from([None, ESCAPE]), st.sampled_from([1, 2, 3, 7, 64]))
def test_a_block_checked_in_chunks_gives_the_same_quotes(data: bytes, escape: int | None, chunk: int) -> None:
    """Blocks are checked a quarter of a megabyte at a time: chunks this small put quotes on every seam."""
    small = type("SmallChunks", (_SuspectQuotes,), {"_CHUNK": chunk})
    found = [int(i) for i in small(QUOTE, DELIMITER, escape)(data, _FeedOffsets())]
    assert found == reference(data, escape)
