"""What each error code and run error kind means, and what to do about it: the hand-written half of
docs/troubleshooting.md. The codes themselves are found in the code (docs/gen/error_codes.py); a code without an
entry here makes tests/unit/test_docs_generated.py fail, naming it.

Every error also carries its own message and action (the API's `{"error": {"code", "message", "action"}}`, the
console's notice, a run's error list); these texts say what the code covers in general.
"""

from __future__ import annotations

from typing import NamedTuple


class Guide(NamedTuple):
    meaning: str
    action: str


CODE_GUIDE: dict[str, Guide] = {
    # --- 400: the request (or the run) cannot be carried out as configured ---------------------------------------
    "bad_file": Guide(
        "A file cannot be read at all: not valid JSON / CSV / Parquet, empty, not UTF-8, or (with `multiline` and "
        "mode failfast) a CSV record longer than the streaming reader's block. A run quarantines the file and goes "
        "on with the others.",
        "Look at the file named in the message (file ledger, status quarantined). Fix the producer or the format "
        "options (encoding, delimiter, multi-line); a fixed file with a new name or modification is picked up again.",
    ),
    "bad_request": Guide(
        "The API refused the request before reading it: the body is not JSON, or another framework-level refusal.",
        "Send `content-type: application/json` and a JSON body; check the method and the path against the API "
        "reference.",
    ),
    "cluster_auth_failed": Guide(
        "The Spark Connect cluster refused the connection: its token is wrong or expired.",
        "Register the cluster again with the right token (Clusters page, or `PUT /api/v1/clusters/{id}`), then "
        "Test Connection.",
    ),
    "host_key_mismatch": Guide(
        "The SFTP server presented another host key than the fingerprint pinned on the ingestion: possibly an "
        "attack; nothing was sent.",
        "Ask the server's administrator whether the key changed; if not, do not change the pin and alert your network "
        "team. If it did: the fingerprint is part of the source, which is locked once the ingestion has loaded a file "
        "(409), so create a new ingestion with the new `source.host_key_fingerprint` (SHA256:...).",
    ),
    "malformed_input": Guide(
        "A Spark cluster could not parse the input files with the configured format.",
        "Check the format options (format, delimiter, multi-line, row tag) against the files; Test & Preview shows "
        "what the options read.",
    ),
    "schema_change": Guide(
        "The new files' schema does not fit the table and the policy says to stop: `fail`, or a change no policy "
        "can apply (a bigint column whose integers a double cannot hold exactly). Nothing was written.",
        "Read the changes named in the message. Switch the ingestion's policy (`pause`, `auto_merge`, `rescue`), "
        "fix the producer, or give the column a type hint. See schema-changes.md.",
    ),
    "file_refused": Guide(
        "The store refuses to serve one listed file as it is: an S3 object stored with a customer-provided key "
        "(SSE-C), an Azure blob in the Archive tier, a GCS object with a customer-supplied key. The file is "
        "quarantined; the other files load.",
        "Have the producer write the file without a customer key (SSE-S3 and SSE-KMS objects are read as usual), or "
        "rehydrate the archived blob; the file is tried again once it changes.",
    ),
    "source_not_found": Guide(
        "The source path, bucket, container or a listed file does not exist (or a file is shorter than listed, "
        "being rewritten).",
        "Check the path and the bucket or container name in the source (and the endpoint URL). A file that vanished "
        "between listing and reading is picked up again if it comes back.",
    ),
    "edit_conflict": Guide(
        "Settings saved from a form or an API read older than the ingestion's last save (the console's edit page, or "
        "PUT/PATCH with `If-Match`): saving them would undo that save.",
        "Reload the ingestion to see its settings as they are now (GET returns its `revision`), then make the change "
        "again.",
    ),
    "source_changed": Guide(
        "A file was rewritten after the run listed it: the run reads each file as the version its listing gave "
        "(S3 If-Match, Azure etag, GCS etag; a local or SFTP file's size and modification time at the open).",
        "Nothing: the file is read again, whole, by the next run. If producers rewrite files in place while runs "
        "read them, set `min_file_age_seconds` or write each version under a new name.",
    ),
    "storage_auth_failed": Guide(
        "The storage refused the credentials, or they may not read the path (S3, Azure, GCS, SFTP, or file "
        "permissions of a local folder).",
        "Check the credentials of the source and what they may read; for a local folder, give the user that runs "
        "Autoloader read access (`chmod -R o+rX`).",
    ),
    "table_error": Guide(
        "Writing, altering, compacting, vacuuming or dropping the destination table failed (embedded engine or "
        "cluster). The table is unchanged.",
        "Check that the warehouse location is writable and reachable (`AUTOLOADER_WAREHOUSE`, its storage "
        "options); the message names the table and the operation. The next run or maintenance tries again.",
    ),
    "terminal": Guide(
        "A storage service refused a request for a reason retrying will not fix (S3, Azure or GCS answered with an "
        "error that is not about credentials or a missing path).",
        "Check the source settings; the message carries the service's own error code.",
    ),
    "too_many_bad_records": Guide(
        "More records of a batch were malformed than `quality.max_bad_record_ratio` allows; nothing of the batch "
        "was written and the files that pushed it over are named.",
        "Look at the malformed records listed per file, fix the producer, or raise `quality.max_bad_record_ratio`.",
    ),
    # --- 401 / 403: who you are and what you may do ---------------------------------------------------------------
    "unauthorized": Guide(
        "No valid credentials: no API token, an unknown or revoked one, a wrong email or password, an account locked "
        "after five wrong passwords, or no token for `/metrics`.",
        "Send `Authorization: Bearer <token>` with a token from `POST /api/v1/users/{id}/tokens`; in the console, "
        "log in again (a locked account opens after the wait the message names).",
    ),
    "forbidden": Guide(
        "Valid credentials whose role does not allow the change: viewers change nothing, some actions need an "
        "admin or an instance admin; also a change sent from another site, or `/setup` once an admin exists. (A "
        "member's change of another user's ingestion answers `not_found`: members do not see it.)",
        "Ask an admin of your tenant to do it or to give you another role (see user-guide/accounts.md).",
    ),
    # --- 404 / 405 / 409 / 413 ------------------------------------------------------------------------------------
    "not_found": Guide(
        "No such ingestion, run, cluster, schema version, user or token — or it belongs to another tenant (which "
        "answers exactly like a missing one). Also an API path that does not exist.",
        "Check the id (`GET /api/v1/ingestions` lists yours) and that you are signed in to the right tenant.",
    ),
    "method_not_allowed": Guide(
        "The path exists but not with this HTTP method.",
        "Check the method against the API reference (e.g. `POST …/run`, not `GET`).",
    ),
    "conflict": Guide(
        "The request conflicts with the current state: a name already in use, a table that already exists for "
        "`create` or `new_table`, a locked field of an active ingestion (source, format, destination), a schema "
        "version already resolved, auto-merge of an incompatible type change, maintenance of a draft.",
        "Read the message: choose another name or table, create a new ingestion to change a locked field, or pick "
        "another resolution.",
    ),
    "maintenance_not_supported": Guide(
        "The table's format has no compaction or vacuum in Autoloader (a cluster's parquet or Iceberg table).",
        "Turn table maintenance off for this ingestion (`PUT …/maintenance` with `enabled: false`) and run the "
        "format's own maintenance on the cluster, or load into a delta table.",
    ),
    "run_in_progress": Guide(
        "A run (or a table maintenance) of this ingestion is still going; an ingestion runs one thing at a time.",
        "Wait for it to finish (its progress is on the detail page and `GET …/runs/{run_id}`), then try again.",
    ),
    "run_taken_over": Guide(
        "Another server ended this run while it still worked on it (its heartbeat was older than the stale-run "
        "window: the process was paused, starved or cut off from the database); it stopped without writing more.",
        "Nothing to do: the run that took over loads the remaining files. If it repeats, check that no server is "
        "paused or starved, and that `AUTOLOADER_STALE_RUN_SECONDS` suits the slowest batch.",
    ),
    "concurrent_commit": Guide(
        "Another writer committed to the table while this batch was written (another ingestion or a job changing "
        "its schema, overwriting or deleting rows) and Delta does not let both commits stand: nothing of the batch "
        "was committed. The run wrote it again against the table as it then was; this error means it lost that "
        "race three times in a row.",
        "Nothing to do: the run is retried by itself. If it repeats, give the writers of this table schedules that "
        "do not overlap.",
    ),
    "shutting_down": Guide(
        "The server was shutting down (SIGTERM, a container stop), or `autoloader run` got SIGTERM or Ctrl-C: the run "
        "ended at a batch boundary (status `cancelled`), each batch it committed recorded; a server's batch that "
        "could not finish within the 10 s drain is settled by the next start.",
        "Nothing to do: the next run (a server's retry once it is back) loads the remaining files.",
    ),
    "warehouse_not_writable": Guide(
        "The warehouse's disk refuses this server's writes: its file system was remounted read-only, or a folder's "
        "owner or permissions changed. Nothing of the batch was committed.",
        "Make it writable again for the user the server runs as; the run is retried by itself and loads its files.",
    ),
    "too_large": Guide("The request body is larger than the API accepts.", "Send a smaller body."),
    # --- 422: a field is invalid ----------------------------------------------------------------------------------
    "validation_error": Guide(
        "The request body or a parameter does not validate; `field` names the first bad field and `fields` lists "
        "all of them.",
        "Correct the fields listed and send the request again (the wizard shows the same messages next to the inputs).",
    ),
    "invalid_config": Guide(
        "A configuration the service refuses: a local path outside `AUTOLOADER_LOCAL_ROOTS`, a time zone, time or "
        "cron expression that does not work, a bad file pattern or type hint, a vacuum retention under 7 days, a "
        "missing default value for a backfill, a source or engine whose package is not installed, or a setting the "
        "server does not start with (a local root that is a system folder or holds the data dir).",
        "The message names the field and the action the fix (for local paths: the allowed roots, and "
        "`AUTOLOADER_LOCAL_ROOTS` to change them).",
    ),
    "egress_refused": Guide(
        "An S3 endpoint, webhook, cluster URL or warehouse endpoint leads to a loopback, private, link-local or "
        "cloud-metadata address (however written), or is not a valid http(s) / sc:// URL. Nothing was sent.",
        "Use a public host, or add the host or its network to `AUTOLOADER_EGRESS_ALLOW` if it is meant to be "
        "reachable (e.g. MinIO on the same network).",
    ),
    "format_not_supported": Guide(
        "The chosen cluster has no data source for the format or table format (e.g. Delta or Avro jars missing).",
        "Add the package the message names to the cluster (`spark.jars.packages`) and restart it, or choose "
        "another format.",
    ),
    "host_key_not_pinned": Guide(
        "An SFTP source without a pinned host key: Autoloader does not connect to an unknown server blindly. The "
        "answer carries the fingerprint the server presented.",
        "Check the fingerprint with the server's administrator and save it as `source.host_key_fingerprint` (Test "
        "Connection shows it).",
    ),
    "host_unresolved": Guide(
        "A host name did not resolve when connecting, so nothing was sent to it.",
        "Check the host name and this machine's DNS; a run retries later on its own.",
    ),
    # --- 429 ------------------------------------------------------------------------------------------------------
    "rate_limited": Guide(
        "Too many API requests by one user in a minute (`AUTOLOADER_RATE_LIMIT_PER_MINUTE`), or too many login "
        "attempts from one address (`AUTOLOADER_LOGIN_ATTEMPTS_PER_MINUTE`).",
        "Wait the `Retry-After` seconds and try again; raise the limit (0 turns the API limit off) for heavy "
        "automation.",
    ),
    # --- 500 ------------------------------------------------------------------------------------------------------
    "error": Guide(
        "The base of every typed error; not raised by itself.",
        "If you see it, report it with the server log.",
    ),
    "internal": Guide(
        "An unexpected fault in the server (a bug); the answer names the exception type only.",
        "Retry; if it keeps failing, read the server log (`AUTOLOADER_LOG_LEVEL=INFO` for more) and report it.",
    ),
    # --- 503: a dependency is down; runs retry these on their own --------------------------------------------------
    "transient": Guide(
        "A failure worth retrying that no more precise code covers.",
        "Nothing: the run is retried after 1, 5 and 15 minutes (`AUTOLOADER_RETRY_BACKOFF_SECONDS`).",
    ),
    "storage_unavailable": Guide(
        "The storage is unreachable, throttling or failing (network, 5xx, SFTP connection). Retried inside the run "
        "(`AUTOLOADER_STORAGE_RETRY_*`), then the run fails as transient.",
        "Usually nothing: the run is retried. If it persists, check the endpoint and the network from the server.",
    ),
    "cluster_unreachable": Guide(
        "The Spark Connect cluster does not answer, or the local cluster did not start.",
        "Check the cluster runs and its `sc://host:port` URL (Clusters → Test Connection); for a local cluster, "
        "Java 17 and the server log the message names. Runs retry on their own.",
    ),
    "out_of_space": Guide(
        "The disk (or quota) under the warehouse is full: the table write failed and committed nothing; the batches "
        "committed before it stay.",
        "Free space on the warehouse's disk, raise its quota or move the warehouse (`AUTOLOADER_WAREHOUSE`); the "
        "run is retried by itself and loads the waiting files once there is room.",
    ),
    "metadata_unavailable": Guide(
        "The metadata database (SQLite file or PostgreSQL) did not answer within the run's retry budget "
        "(`AUTOLOADER_DB_RETRY_SECONDS`), or its disk is full (the message says which). The API answers a request "
        "that needed it with this code too.",
        "Check that the database is up and reachable, or free space on its disk (SQLite: under "
        "`AUTOLOADER_DATA_DIR`); the run is retried once it is back, and nothing is loaded twice.",
    ),
    "spark_jar_fetch_failed": Guide(
        "The local Spark cluster's jars (Delta, spark-avro) could not be downloaded from Maven Central on its first "
        "start.",
        "Let the server reach Maven Central (or a mirror in `~/.m2/settings.xml`), or copy the jars into the cache "
        "(`AUTOLOADER_SPARK_JARS`); see SPARK.md.",
    ),
}

RUN_KIND_GUIDE: dict[str, Guide] = {
    "file_changed": Guide(
        "A file already loaded changed (size or etag) at the source; it is marked `changed` in the ledger and not "
        "loaded again.",
        "Turn on `source.reload_changed_files` to load the new version, or have producers write new files instead.",
    ),
    "file_unreadable": Guide(
        "A listed file could not be opened during the run; it is marked `failed` and tried again once it changes.",
        "Check the file's permissions and the storage; the message names the cause.",
    ),
    "schema_change": Guide(
        "Under the `fail` schema policy, a file whose columns or types differ from the table's; nothing of it was "
        "written, and it is recorded `failed` (the files that match the table load, except in overwrite mode, where "
        "a run's files wait together).",
        "Fix the producer and replace the file, or switch the schema policy to pause, auto_merge or rescue; the file "
        "is tried again at every run.",
    ),
    "file_rewritten": Guide(
        "A listed file was rewritten before or while the run read it; none of its rows were loaded (see "
        "`source_changed`).",
        "Nothing: the next run reads its new version whole.",
    ),
    "file_vanished": Guide(
        "A listed file was gone when the run read it (moved or deleted after listing).",
        "Nothing, if that was intended; it is picked up again if it comes back.",
    ),
    "internal": Guide(
        "The run crashed on an unexpected fault; the run record keeps a short traceback in `detail`.",
        "Retry the run; if it fails again, report it with the details.",
    ),
    "interrupted": Guide(
        "The run's process died (killed, crashed, restarted), or its server sent no heartbeat for longer than "
        "the stale-run window (paused, starved, cut off from the metadata database) and another server took it "
        "over; the run's message says which.",
        "Nothing: the next run reconciles the table and the file ledger, so no file is lost or loaded twice.",
    ),
    "malformed_records": Guide(
        "Some records of a file did not parse or did not fit the schema: kept in `_rescued_data` (mode "
        "permissive) or dropped and counted (dropmalformed).",
        "Query the table's `_rescued_data` for that file, fix the producer, or change the format's mode.",
    ),
    "metadata_unavailable": Guide(
        "The run could not start: the metadata database was unreachable.",
        "Nothing: the next run loads the files once the database is back.",
    ),
    "quarantined": Guide(
        "A file could not be read (see `bad_file`): it is set aside with status `quarantined` and the run goes on.",
        "Fix the file or the format options; a new version of the file is picked up again.",
    ),
}
