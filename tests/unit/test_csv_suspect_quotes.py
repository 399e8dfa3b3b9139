"""The vectorised pre-check of CsvLines against a plain Python statement of the same rule, on generated blocks.

The rule (`csv_lines._SuspectQuotes`): quotes that are not escaped are counted per line. Every quote of a line with
an odd count is suspect (a quoted value left open); on the other lines a quote that opens a value (its line's 1st,
3rd, ...) is suspect after anything but the delimiter, a line break or a quote, and one that closes a value (2nd,
4th, ...) before anything but those. The numpy version works on bits and takes the rare odd line byte by byte,
which is what these tests probe: odd lines anywhere in a block, at its start, on its last line with or without a line
feed, quotes across 64-bit words and 256 KiB chunks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats.csv_lines import _FeedOffsets, _long_line_starts, _may_hold_long_line, _SuspectQuotes

QUOTE, DELIMITER, ESCAPE = ord('"'), ord(","), ord("\\")
BLOCKS = st.lists(st.sampled_from(b'"",\n\r\\ab'), min_size=0, max_size=400).map(bytes)
LONG_BLOCKS = st.lists(st.sampled_from(b'"",\n\r\\ab'), min_size=100, max_size=900).map(bytes)


def escaped_by(data: bytes, escape: int | None) -> set[int]:
    """Offsets of the characters an odd run of escape characters takes as text (`len(data)` when a run ends it)."""
    escaped: set[int] = set()
    i = 0
    while escape is not None and i < len(data):
        if data[i] != escape:
            i += 1
            continue
        j = i
        while j < len(data) and data[j] == escape:
            j += 1
        if (j - i) % 2:
            escaped.add(j)
        i = j
    return escaped


def reference(data: bytes, escape: int | None) -> list[int]:
    escaped = escaped_by(data, escape)
    escapes = escape is not None and escape in data
    if len(data) < 3 and not escapes:
        return []

    def text_at(at: int) -> bool:  # neither delimiter, quote nor line break, or an escaped character
        return at in escaped or data[at] not in {DELIMITER, QUOTE, 10, 13}

    found: set[int] = set()
    start = 0
    for line in data.split(b"\n"):
        quotes = [start + j for j, byte in enumerate(line) if byte == QUOTE and start + j not in escaped]
        for rank, at in enumerate(quotes):
            if len(quotes) % 2:
                found.add(at)
            elif rank % 2 == 0 and at > 0 and text_at(at - 1):
                found.add(at)  # opens a value in the middle of one
            elif rank % 2 == 1 and at + 1 < len(data) and text_at(at + 1):
                found.add(at)  # closes a value that goes on
        start += len(line) + 1
    if escapes:
        found |= {at for at in escaped if at < len(data) and data[at] in (10, 13)}  # a line break taken as text
        if len(data) in escaped:
            found.add(len(data) - 1)  # an escape character at the end, which Arrow drops
    return sorted(found)


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
# for the bit-parallel parity of `_running_parity` and the neighbours of `_after` and `_before`.
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
@given(LONG_BLOCKS, st.sampled_from([None, ESCAPE]), st.sampled_from([64, 128, 192]))
def test_a_block_checked_in_chunks_gives_the_same_quotes(data: bytes, escape: int | None, chunk: int) -> None:
    """Blocks are classified a quarter of a megabyte at a time (whole 64-bit words): chunks of one to three words
    put quotes on every seam."""
    small = type("SmallChunks", (_SuspectQuotes,), {"_CHUNK": chunk})
    found = [int(i) for i in small(QUOTE, DELIMITER, escape)(data, _FeedOffsets())]
    assert found == reference(data, escape)


@pytest.mark.parametrize(
    ("line", "suspect"),
    [
        (b'1,a","', True),  # a"  is text to Arrow, so the next quote opens a value that runs into the next line
        (b'1,""x,3', True),  # the empty value is closed, then goes on
        (b'1,"a"""b,c', True),
        (b'a","', True),
        (b'1,"a ""quoted"" word",2', False),
        (b'1,"{""a"":1}",""', False),
        (b'"a",b,"",""""', False),
    ],
)
def test_quotes_in_the_wrong_place_are_suspect_on_a_line_of_even_count(line: bytes, suspect: bool) -> None:
    data = b"a,b,c\n" + line + b"\n2,3,4\n"
    assert suspects(data, None) == reference(data, None)
    assert bool(suspects(data, None)) is suspect


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"x" * 64 + b'"a",1\n', [64]),  # opens at the first byte of a word, after text in the word before
        (b'"' + b"x" * 62 + b'"b,1\n', [63]),  # closes at the last byte of a word, before text in the next
    ],
    ids=["left-neighbour-in-the-word-before", "right-neighbour-in-the-next-word"],
)
def test_a_quotes_neighbour_across_a_word_boundary_counts(data: bytes, expected: list[int]) -> None:
    assert suspects(data, None) == reference(data, None) == expected


@pytest.mark.parametrize(
    ("line", "suspect"),
    [
        (b'a\\""b,,"', True),  # an escaped quote is text beside the quote after it
        (b'"a\\\\"b",c', True),  # an escaped backslash, then a quote that closes the value before text
        (b"abb\\", True),  # its line feed is escaped: Arrow would join the next line
        (b'1,"a\\"b"', False),
        (b'"a\\\\",b', False),  # an escaped backslash at the end of a quoted value
    ],
)
def test_escapes_are_counted_in_runs_and_escaped_characters_are_text(line: bytes, suspect: bool) -> None:
    data = b"x,y\n" + line + b"\n4,5\n"
    assert suspects(data, ESCAPE) == reference(data, ESCAPE)
    assert bool(suspects(data, ESCAPE)) is suspect


def test_an_escape_character_that_ends_the_file_is_suspect() -> None:
    assert suspects(b"x,y\n3,4\\", ESCAPE) == reference(b"x,y\n3,4\\", ESCAPE) == [7]
