"""`source.file_pattern`: Hadoop's glob syntax (GlobFilter / FileSystem.globStatus, which Auto Loader uses),
matched against the path relative to the source root; unsupported patterns are refused when a spec is saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.config import STORED, SourceConfig
from core.errors import ConfigError
from core.guards import LocalRoots
from core.storage.base import GlobError, check_glob, glob_depth, glob_to_regex, is_hidden, literal_prefix, matches
from core.storage.local import LocalStorage

# Hadoop's documented examples (FileSystem#globStatus javadoc) and its GlobPattern test cases, one path component.
HADOOP_DOCUMENTED = [
    # ? : any single character
    ("?", "a", True),
    ("?", "ab", False),
    ("?", "", False),
    ("?", "^", True),
    ("?", "[", True),
    # * : zero or more characters
    ("*", "", True),
    ("*", "foo", True),
    ("foo*", "foo", True),
    ("foo*", "food", True),
    ("foo*", "fo", False),
    ("f*d", "fud", True),
    ("f*d", "food", True),
    ("f*d", "foo", False),
    ("*d", "good", True),
    # [abc] : one character of the set
    ("[abc]", "a", True),
    ("[abc]", "c", True),
    ("[abc]", "d", False),
    ("[abc]", "ab", False),
    # [a-b] : one character of the range
    ("[a-b]", "a", True),
    ("[a-b]", "b", True),
    ("[a-b]", "c", False),
    ("file-[0-9].json", "file-7.json", True),
    ("file-[0-9].json", "file-x.json", False),
    # [^a] : one character not in the set or range (^ right after the bracket; Hadoop also takes [!a])
    ("[^a]", "b", True),
    ("[^a]", "a", False),
    ("[^a-c]", "d", True),
    ("[^a-c]", "b", False),
    ("[^^]", ".", True),
    ("[^^]", "^", False),
    ("[!!-]", "^", True),
    ("[!!-]", "!", False),
    ("[!!-]", "-", False),
    # ] first in a class and - last are literal (POSIX, as in Hadoop's tests)
    ("[]^-]", "]", True),
    ("[]^-]", "-", True),
    ("[]^-]", "^", True),
    ("[]^-]", "a", False),
    # \c : removes the special meaning of c
    ("\\*\\?\\[\\{\\\\", "*?[{\\", True),
    ("\\*", "x", False),
    ("a\\,b", "a,b", True),
    # {ab,cd} : one string of the set; nested groups
    ("{ab,cd}", "ab", True),
    ("{ab,cd}", "cd", True),
    ("{ab,cd}", "abcd", False),
    ("{ab,c{de,fh}}", "ab", True),
    ("{ab,c{de,fh}}", "cde", True),
    ("{ab,c{de,fh}}", "cfh", True),
    ("{ab,c{de,fh}}", "cd", False),
    ("{[12]*,[45]*,[78]*}", "2!", True),
    ("{[12]*,[45]*,[78]*}", "42", True),
    ("{[12]*,[45]*,[78]*}", "7$", True),
    ("{[12]*,[45]*,[78]*}", "3", False),
    ("{[12]*,[45]*,[78]*}", "9x", False),
    # regex characters are plain text
    ("^.$()|+", "^.$()|+", True),
    ("a.json", "abjson", False),
    # a comma outside a group is plain text
    ("a,b", "a,b", True),
]

# Paths with folders: Hadoop matches component by component, so * ? and classes never cross '/'.
WITH_FOLDERS = [
    ("*.json", "a.json", True),
    ("*.json", "sub/a.json", False),  # no '/' in the pattern: top level only, as in `ls`
    ("*/*.json", "sub/a.json", True),
    ("*/*.json", "a/b/c.json", False),
    ("?/a.json", "x/a.json", True),
    ("a?b", "a/b", False),
    ("a[^x]b", "a/b", False),
    ("a[!-~]b", "a/b", False),  # a range that holds '/' still never matches it
    ("**/*.json", "a.json", True),
    ("**/*.json", "a/b/c.json", True),
    ("**/*.json", "a/b/c.csv", False),
    ("logs/**", "logs/2024/01/x.log", True),
    ("year=*/month={01,02}/*.json", "year=2024/month=01/part-0.json", True),
    ("year=*/month={01,02}/*.json", "year=2024/month=03/part-0.json", False),
    ("{2024/01,2023}/*.json", "2024/01/a.json", True),  # Hadoop expands groups holding '/' first
    ("{2024/01,2023}/*.json", "2023/a.json", True),
    ("{2024/01,2023}/*.json", "2024/a.json", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), HADOOP_DOCUMENTED + WITH_FOLDERS)
def test_pattern_matches_like_hadoop(pattern: str, path: str, expected: bool) -> None:
    check_glob(pattern)
    assert (glob_to_regex(pattern).match(path) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("{a,b", "never closed"),
        ("a{b{c,d}", "never closed"),
        ("a}", "closes no '{'"),
        ("[abc", "never closed"),
        ("abc]", "closes no '['"),
        ("[]", "never closed"),
        ("[a[b]", "inside a [...] class"),
        ("[z-a]", "backwards"),
        ("[a/b]", "cannot match '/'"),
        ("x\\", "escapes nothing"),
        ("", "empty"),
        ("   ", "empty"),
        ("/data/*.json", "absolute path"),
        ("../other/*.json", "'..'"),
        ("a/../b.json", "'..'"),
        ("./a.json", "'.'"),
    ],
)
def test_unsupported_patterns_are_refused_naming_the_pattern(pattern: str, says: str) -> None:
    with pytest.raises(GlobError) as caught:
        check_glob(pattern)
    assert says in str(caught.value)
    assert f"'{pattern}'" in str(caught.value)


def test_hadoop_divergence_a_lone_closing_bracket_or_brace_must_be_escaped() -> None:
    """Hadoop reads a lone `]` or `}` as text; here it is refused as unbalanced, and the escaped form works."""
    for lone, escaped in (("]", "\\]"), ("}", "\\}")):
        with pytest.raises(GlobError):
            check_glob(f"a{lone}")
        assert glob_to_regex(f"a{escaped}").match(f"a{lone}")


def test_source_config_refuses_a_bad_pattern_at_save_but_still_loads_a_stored_one() -> None:
    with pytest.raises(ValidationError) as caught:
        SourceConfig(type="local", path="/data", file_pattern="*.{json,csv")
    error = caught.value.errors()[0]
    assert error["loc"] == ("file_pattern",)
    assert "'*.{json,csv'" in error["msg"] and "add '}'" in error["msg"]
    stored = SourceConfig.model_validate(
        {"type": "local", "path": "/data", "file_pattern": "*.{json,csv"}, context=STORED
    )
    assert stored.file_pattern == "*.{json,csv"
    assert SourceConfig(type="local", path="/data", file_pattern="year=*/*.json").file_pattern == "year=*/*.json"
    assert SourceConfig(type="local", path="/data", file_pattern=None).file_pattern is None


def test_hidden_files_never_match() -> None:
    assert matches("a.json", "*.json")
    assert not matches("_SUCCESS", "*")
    assert not matches(".tmp/a.json", "**/*.json")
    assert matches("a.json", None)


@given(st.text(alphabet="/._a", max_size=12))
def test_a_path_is_hidden_when_one_of_its_parts_is(path: str) -> None:
    """The listing's string-scan check agrees with its definition: some part of the path starts with `.` or `_`."""
    hidden_part = any(part.startswith((".", "_")) for part in path.split("/") if part)
    assert is_hidden(path) is hidden_part


def test_literal_prefix_and_depth_narrow_the_listing() -> None:
    assert literal_prefix("logs/2024/*.json") == "logs/2024/"
    assert literal_prefix("logs/{a,b}/x.json") == "logs/"
    assert literal_prefix("we\\[ird\\]/x*.json") == "we[ird]/"
    assert literal_prefix("*.json") == ""
    assert glob_depth("*.json") == 0
    assert glob_depth("{a,b/c/d}/*.json") == 3
    assert glob_depth("a/**/x.json") is None
    assert glob_depth(None) is None


def _files(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}\n")


def test_local_listing_follows_the_pattern(tmp_path: Path) -> None:
    _files(
        tmp_path,
        "a.json",
        "b.csv",
        "2023/x.json",
        "2024/01/y.json",
        "2024/02/z.json",
        "2024/q.json",
        "[raw]/r.json",
    )
    storage = LocalStorage(str(tmp_path), LocalRoots([tmp_path]))

    def listed(pattern: str | None) -> list[str]:
        return [Path(f.path).relative_to(tmp_path).as_posix() for f in storage.list_files(pattern)]

    assert listed("*.json") == ["a.json"]
    assert listed("*.{json,csv}") == ["a.json", "b.csv"]
    assert listed("{2024/01,2023}/*.json") == ["2023/x.json", "2024/01/y.json"]
    assert listed("2024/0[^1]/*") == ["2024/02/z.json"]
    assert listed("\\[raw\\]/*.json") == ["[raw]/r.json"]
    assert listed("**/z.json") == ["2024/02/z.json"]
    assert listed("*.parquet") == []
    with pytest.raises(ConfigError) as caught:
        list(storage.list_files("{unclosed"))
    assert caught.value.field == "source.file_pattern"
