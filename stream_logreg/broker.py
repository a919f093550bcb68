"""A real Apache Kafka broker on this machine, with no Docker: for tests, demos and users.

``LocalKafka`` resolves the broker's jars from Maven Central once (cached under
``~/.cache/stream_logreg/kafka-<version>``, or ``$STREAM_LOGREG_CACHE``), formats a KRaft
storage directory, and runs one JVM that is both broker and controller on free loopback
ports. It needs Java 17+ and Maven on the PATH.

    with LocalKafka() as kafka:
        print(kafka.bootstrap_servers)  # 127.0.0.1:PORT

It can be stopped and started again on the same data directory and port (``stop()``,
``start()``), which the fault tests use to restart the broker under a live consumer.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType

from stream_logreg._paths import user_cache_dir
from stream_logreg.exceptions import BrokerError

__all__ = [
    "KAFKA_VERSION",
    "LocalKafka",
    "broker_classpath",
    "free_port",
]

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.4"
READY_LINE = "Kafka Server started"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>kafka-broker-classpath</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.cleaner.dedupe.buffer.size=16777216
"""


def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(
            f"{tool} was not found on the PATH; {why}. Install it (for example "
            "'apt-get install openjdk-17-jre-headless maven'), or point KAFKA_BOOTSTRAP_SERVERS "
            "at an existing Kafka cluster, or use docker/compose.yaml"
        )
    return path


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def broker_classpath(version: str = KAFKA_VERSION) -> Path:
    """Return the folder holding the broker's jars, downloading them with Maven once."""
    lib = user_cache_dir() / f"kafka-{version}" / "lib"
    if (lib / ".complete").exists():
        return lib
    mvn = _require("mvn", "Maven resolves the Kafka broker's jars from Maven Central")
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent) as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
        out = Path(work) / "lib"
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={out}"],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise BrokerError(
                f"Maven could not resolve Kafka {version}'s jars (exit {result.returncode}); "
                f"check that Maven Central is reachable. Maven said:\n{_tail(result.stdout + result.stderr)}"
            )
        (out / ".complete").touch()
        if lib.exists():  # another process finished first
            shutil.rmtree(lib)
        out.rename(lib)
    return lib


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalKafka:
    """A single-node Kafka (KRaft) broker in a child JVM, on loopback.

    Parameters
    ----------
    port
        The client port (default: a free one). The controller gets another free port.
    data_dir
        Where the broker keeps its logs and state (default: a temporary folder, removed
        on exit). A folder given here is kept.
    version
        The Kafka version whose jars Maven resolves.
    startup_timeout
        Seconds to wait for the broker to report that it started.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | Path | None = None,
        version: str = KAFKA_VERSION,
        startup_timeout: float = 120.0,
    ) -> None:
        self.port = port or free_port()
        self.controller_port = free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="stream-logreg-kafka-"))
        self.version = version
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to, "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker JVM's process id while it runs (None when stopped)."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        """The broker's console log."""
        return self.data_dir / "broker.log"

    def _java_command(self, lib: Path, main: str, *args: str, heap: str = "512m") -> list[str]:
        java = _require("java", "the Kafka broker runs on Java 17 or newer")
        return [
            java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}", "-cp", f"{lib}/*", main, *args,
        ]  # fmt: skip

    def _configure(self, lib: Path) -> Path:
        """Write the configuration; format the storage the first time. Return server.properties."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        properties = self.data_dir / "server.properties"
        properties.write_text(
            _SERVER.format(port=self.port, controller_port=self.controller_port, log_dir=self.data_dir / "data")
        )
        if not (self.data_dir / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").replace("-", "A")
            result = subprocess.run(
                self._java_command(lib, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties),
                                   heap="256m"),
                capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                raise BrokerError(
                    f"formatting the broker's storage in {self.data_dir} failed (exit {result.returncode}):\n"
                    f"{_tail(result.stdout + result.stderr)}"
                )
        return properties

    def start(self) -> LocalKafka:
        """Start the broker (formatting its storage the first time) and wait until it is ready."""
        if self._process is not None:
            return self
        lib = broker_classpath(self.version)
        properties = self._configure(lib)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._java_command(lib, "kafka.Kafka", str(properties)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise BrokerError(f"the Kafka broker exited with status {code} while starting:\n{self._log_tail()}")
            if READY_LINE in self._log_since(offset) and _accepts(self.port):
                return self
            time.sleep(0.2)
        self.stop()
        raise BrokerError(
            f"the Kafka broker did not become ready within {self.startup_timeout:.0f} s:\n{self._log_tail()}"
        )

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def _log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no broker log was written)"
        with self.log_path.open("rb") as f:
            return "\n".join(deque(f.read().decode(errors="replace").splitlines(), maxlen=lines))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker: SIGTERM (a clean shutdown), then SIGKILL after ``timeout`` s.

        Its data directory and ports are kept, so ``start()`` brings the same broker back.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        """Stop the broker and remove its files if the folder was its own."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
