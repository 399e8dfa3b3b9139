"""What delta-rs says when the warehouse's store fails, turned into typed errors a user can act on.

delta-rs raises one generic error for every store failure: a multi-line chain with terminal colours that can
carry a signed URL. `plain_reason` makes one plain, bounded line of it without secrets; `store_failure` tells a
store that is down or full (transient: the run is retried) from one that refuses the credentials (terminal: fix
the settings), and names the table's location and the settings to check."""

from __future__ import annotations

import re

from core.errors import (
    AutoloaderError,
    OutOfSpace,
    StorageAuthError,
    StorageUnavailable,
    WarehouseNotWritable,
    says_out_of_space,
)

WAREHOUSE_SETTINGS = "AUTOLOADER_WAREHOUSE / AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SECRET_WORDS = ("key", "secret", "token", "sas", "password", "credential", "signature")
_SIGNED_QUERY = re.compile(r"\b(sig|signature|x-goog-signature|x-amz-signature|token|key)=[^&\s]+", re.IGNORECASE)
_PLACES = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+|\bpath:? \S+|(?<![\w)])/\S+|\S+/\S+")
_REFUSED = (
    "lacked the necessary privileges",
    "forbidden",
    "access denied",
    "accessdenied",
    "signaturedoesnotmatch",
    "invalidaccesskeyid",
    "authorizationfailure",
    "authenticationfailed",
    "unauthorized",
    "status: 401",
    "status: 403",
)
_NOT_WRITABLE = ("read-only file system", "os error 30", "permission denied", "os error 13")
"""A local warehouse the server may not write (a disk remounted read-only, a folder's owner changed): Arrow and
delta-rs reported it as "Failed to parse parquet", a table error that was not retried."""
_UNREACHABLE = (
    "connection refused",
    "connection reset",
    "connection closed",
    "connect error",
    "error sending request",
    "dns error",
    "timed out",
    "timeout",
    "broken pipe",
    "service unavailable",
    "slow down",
    "slowdown",
    "status: 500",
    "status: 502",
    "status: 503",
    "status: 504",
)


def plain_reason(exc: BaseException, options: dict[str, str]) -> str:
    """One plain line, at most 600 characters, without terminal colours, a signed URL's signature or the value of
    a secret option the message might repeat."""
    text = _SIGNED_QUERY.sub(lambda m: f"{m.group(1)}=***", _ANSI.sub("", str(exc)))
    for key, value in options.items():
        if len(value) >= 6 and any(word in key.lower() for word in _SECRET_WORDS):
            text = text.replace(value, "***")
    parts = [part.strip(" ↳\t") for part in text.splitlines() if part.strip(" ↳\t")]
    return f"{type(exc).__name__}: {' / '.join(parts)}"[:600]


def _without_places(text: str, location: str) -> str:
    """The message without the URLs, paths and table location it quotes: a table named `unauthorized_logins` or
    `api_timeouts` must not make a failure look like refused credentials or a store that is down."""
    text = text.replace(location, " ")
    return _PLACES.sub(" ", text)


def _endpoint(options: dict[str, str]) -> str:
    for key, value in options.items():
        if key.lower().endswith(("endpoint", "endpoint_url", "base_url")):
            return f" (endpoint {value})"
    return ""


def store_failure(exc: BaseException, location: str, options: dict[str, str]) -> AutoloaderError | None:
    """A typed error when `exc` is the warehouse's store refusing the credentials, not answering or out of space;
    None when it is something else (a corrupt table, a schema clash), which the caller reports as a table error."""
    why = plain_reason(exc, options)
    lowered = _without_places(why, location).lower()
    where = f"{location}{_endpoint(options)}"
    if says_out_of_space(lowered):
        return OutOfSpace(
            f"The warehouse at {where} is out of space: {why}",
            "Free space on the warehouse's disk (or raise its quota), or move the warehouse (AUTOLOADER_WAREHOUSE). "
            "The failed write committed nothing; a run is retried by itself and loads its files once there is room.",
            detail=repr(exc),
        )
    if any(word in lowered for word in _REFUSED):
        return StorageAuthError(
            f"The warehouse refused access to {where}: {why}",
            f"Check the credentials in {WAREHOUSE_SETTINGS}: they must allow reading, listing and writing this "
            "location. Nothing was written; retry the run once they are fixed.",
            detail=repr(exc),
        )
    if refusal := next((word for word in _NOT_WRITABLE if word in lowered), None):
        said = "read-only file system" if "30" in refusal or "read-only" in refusal else "permission denied"
        return WarehouseNotWritable(  # the cause alone: delta-rs wraps it in "Failed to parse parquet"
            f"The warehouse at {where} cannot be written by this server ({said}).",
            "Make the warehouse's disk writable again (a file system remounted read-only, a folder's owner or "
            "permissions changed) for the user the server runs as. The failed write committed nothing; a run is "
            "retried by itself and loads its files once it can write.",
            detail=repr(exc),
        )
    if any(word in lowered for word in _UNREACHABLE):
        return StorageUnavailable(
            f"The warehouse at {where} did not answer: {why}",
            f"Check that the store is up and reachable from this server ({WAREHOUSE_SETTINGS}). The run is retried; "
            "a batch whose commit reached the table is kept once.",
            detail=repr(exc),
        )
    return None
