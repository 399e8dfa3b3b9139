"""The jars the local Spark cluster loads on top of pyspark: Delta, hadoop-aws (+ AWS SDK), spark-avro.

They come from Maven Central through `mvn dependency:copy`, one artifact at a time and without transitive
dependencies (their transitive closure drags in older Hadoop, Parquet, Jackson and Scala jars that clash with
the ones pyspark ships). They land in `<cache>/<set hash>/`; a complete folder is used without any network.
Run `python -m app.spark_jars [CACHE]` to fetch them ahead of time (CI does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError, TransientError

# The versions, and why (pyspark 4.2.0, Scala 2.13, Hadoop 3.5.0 in pyspark/jars):
# - delta-spark 4.4.0 is the first Delta release built against Spark 4.2.0 (4.1.x-4.3.x target Spark 4.1).
#   delta-storage is its one runtime dependency that Spark does not ship (the delta-kernel jars are not needed
#   by the Spark connector's SQL paths used here).
# - Iceberg is NOT in this set: it has no Spark 4.2 runtime yet (iceberg-spark-runtime-4.2_2.13 is not on Maven
#   Central, checked 2026-12-01), and the newest one, iceberg-spark-runtime-4.1_2.13 1.12.0, fails on Spark 4.2 at
#   the first catalog call ("class org.apache.iceberg.spark.source.SparkView can not implement org.apache.spark.sql.
#   connector.catalog.View, because it is not an interface": Spark 4.2 made View a class). Iceberg tables are written
#   on a Spark 4.1 cluster instead (ICEBERG_* below); the tests start one from pyspark 4.1.4 in a venv of its own
#   (tests/spark_iceberg_server.py), driven by this project's pyspark 4.2 Connect client. Add
#   "org.apache.iceberg:iceberg-spark-runtime-4.2_2.13:<version>" here when it is published (docs/SPARK.md).
# - spark-avro is Spark's own module, same version as pyspark.
# - S3: hadoop-aws must match the Hadoop in pyspark (hadoop-client-api-3.5.0); its AWS SDK v2 bundle (2.35.4) and
#   the analytics accelerator (1.3.1) are the versions hadoop-project 3.5.0 pins. The bundle is ~690 MB (about 2 s
#   from Maven Central here, once per machine); the local cluster reads s3:// sources through it (s3a://), with the
#   source's endpoint and key passed per bucket (core/engines/spark/engine.py `with_source`).
S3_JARS: tuple[str, ...] = (
    "org.apache.hadoop:hadoop-aws:3.5.0",
    "software.amazon.awssdk:bundle:2.35.4",
    "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.3.1",
)
SPARK_JARS: tuple[str, ...] = (
    "io.delta:delta-spark_2.13:4.4.0",
    "io.delta:delta-storage:4.4.0",
    "org.apache.spark:spark-avro_2.13:4.2.0",
    *S3_JARS,
)

# Iceberg on a Spark 4.1 cluster: iceberg-spark-runtime-4.1_2.13 1.12.0 (the newest Iceberg release; 1.11.0 also
# has a 4.1 runtime) is one self-contained jar, built against Spark 4.1; pyspark 4.1.4 is the newest 4.1 release on
# PyPI (Scala 2.13, Hadoop 3.4.2). A pyspark 4.2 client talks to that server over Spark Connect (checked: create,
# append with snapshot properties, MERGE INTO, ALTER, UPDATE, rewrite_data_files, metadata tables).
ICEBERG_SPARK_VERSION = "4.1"
ICEBERG_PYSPARK = "4.1.4"
ICEBERG_JARS: tuple[str, ...] = ("org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:1.12.0",)

CACHE_ENV = "AUTOLOADER_SPARK_JARS"
FETCH_TIMEOUT_SECONDS = 900.0


class JarFetchFailed(TransientError):
    code = "spark_jar_fetch_failed"


@dataclass(frozen=True, slots=True)
class Artifact:
    group: str
    name: str
    version: str

    @classmethod
    def parse(cls, coordinate: str) -> Artifact:
        group, name, version = coordinate.split(":")
        return cls(group, name, version)

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"


def artifacts(coordinates: tuple[str, ...] = SPARK_JARS) -> list[Artifact]:
    return [Artifact.parse(c) for c in coordinates]


def set_hash(coordinates: tuple[str, ...] = SPARK_JARS) -> str:
    """Names the cache folder: a change of any version fetches into a new folder, never over the old one."""
    return hashlib.sha256("\n".join(coordinates).encode()).hexdigest()[:12]


def default_cache(data_dir: Path) -> Path:
    """`$AUTOLOADER_SPARK_JARS` when set (shared between data dirs, e.g. tests), else `<data dir>/spark-jars`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path(data_dir) / "spark-jars"


def jar_folder(cache: Path, coordinates: tuple[str, ...] = SPARK_JARS) -> Path:
    return Path(cache) / set_hash(coordinates)


def cached_jars(cache: Path, coordinates: tuple[str, ...] = SPARK_JARS) -> list[Path] | None:
    """The jar paths when every one is in the cache, else None."""
    folder = jar_folder(cache, coordinates)
    paths = [folder / a.file_name for a in artifacts(coordinates)]
    return paths if all(p.is_file() for p in paths) else None


def ensure_jars(cache: Path, coordinates: tuple[str, ...] = SPARK_JARS) -> list[Path]:
    """The jars, fetched from Maven Central the first time (only the missing ones), offline afterwards."""
    folder = jar_folder(cache, coordinates)
    folder.mkdir(parents=True, exist_ok=True)
    for artifact in artifacts(coordinates):
        if not (folder / artifact.file_name).is_file():
            _fetch(artifact, folder)
    paths = cached_jars(cache, coordinates)
    assert paths is not None
    return paths


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigError(
            "The local Spark cluster needs Maven (mvn) to download its Delta, Iceberg and S3 jars once.",
            "Install Maven (apt-get install maven) or put the jars listed in app/spark_jars.py into "
            f"${CACHE_ENV}/{set_hash()}/.",
        )
    return mvn


def _fetch(artifact: Artifact, folder: Path) -> None:
    """`mvn dependency:copy` into a scratch folder, then a rename: a killed fetch never leaves half a jar."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as scratch:
        command = [
            _mvn(),
            "-B",
            "-q",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact={artifact.coordinate}:jar",
            f"-DoutputDirectory={scratch}",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise _failed(artifact, f"mvn did not finish in {FETCH_TIMEOUT_SECONDS:.0f} s") from None
        fetched = Path(scratch) / artifact.file_name
        if done.returncode != 0 or not fetched.is_file():
            raise _failed(artifact, (done.stdout + done.stderr)[-2000:])
        fetched.replace(folder / artifact.file_name)


def _failed(artifact: Artifact, detail: str) -> JarFetchFailed:
    return JarFetchFailed(
        f"Could not download {artifact.coordinate} from Maven Central for the local Spark cluster.",
        "Check this machine reaches Maven Central (or its Maven mirror in ~/.m2/settings.xml) and try again; "
        f"or copy {artifact.file_name} into the jar cache by hand.",
        detail=detail,
    )


def main(argv: list[str]) -> int:
    cache = Path(argv[0]) if argv else default_cache(Path("./data"))
    for path in ensure_jars(cache):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
