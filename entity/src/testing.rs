//! For tests (feature `testing`): real-broker helpers giving each test its own topic, group and
//! `transactional.id`, so tests run in parallel without fencing each other; and [`skip`], so that
//! a test that cannot run here is counted as skipped, not as passed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Says that `test` did not run here, and why: on stderr, and as a line in the file named by
/// `PINGPIPE_SKIPPED_LOG` when it is set (`make test` sets it and subtracts these lines from the
/// passed tests in its closing summary). libtest has no skip at run time, so the test then returns
/// early and libtest reports it as passed; without this line nobody would know it never ran.
pub fn skip(test: &str, reason: &str) {
    eprintln!("skipped: {test}: {reason}");
    let Some(path) = std::env::var_os("PINGPIPE_SKIPPED_LOG") else {
        return;
    };
    // One write of one line in append mode: test binaries running side by side cannot interleave.
    let line = format!("{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record the skipped test {test} in {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

/// The name of the running test: libtest runs each test on a thread named after it (and
/// `#[tokio::test]` runs the test's body on that thread). For [`skip`] from shared helpers.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned()
}

/// The broker that tests use.
pub fn bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect(
        "KAFKA_BOOTSTRAP_SERVERS must name the broker under test: run `make test`, or `make up` and \
         `source .pingpipe/env`",
    )
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a topic with `partitions` partitions on the real broker and returns its name.
pub async fn create_topic(partitions: i32) -> String {
    let topic = unique("pingpipe.test");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
    topic
}

/// A transactional producer with `init_transactions` already done.
pub fn transactional_producer(transactional_id: &str) -> ThreadedProducer<DefaultProducerContext> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "10000")
        .create()
        .unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

/// Produces `records` (key, value; neither may hold `|` or a newline) to `topic` with kcat,
/// outside any transaction and any Rust code of ours: what any Kafka tool, or the prototype,
/// can write. kcat is installed by `scripts/kafka.sh`.
pub fn kcat_produce(topic: &str, records: &[(String, String)]) {
    use std::io::Write;
    let mut child = std::process::Command::new("kcat")
        .args(["-b", &bootstrap_servers(), "-P", "-t", topic, "-K", "|"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat is installed by scripts/kafka.sh");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    for (key, value) in records {
        writeln!(stdin, "{key}|{value}").expect("kcat reads its input");
    }
    drop(stdin);
    assert!(child.wait().expect("kcat ran").success(), "kcat failed");
}

/// Enqueues one record in the producer's open transaction.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    value: &[u8],
) {
    producer
        .send(BaseRecord::to(topic).key(key).payload(value))
        .map_err(|(e, _)| e)
        .unwrap();
}

/// A consumer of `topic` from its first offset, at the given `isolation.level`.
pub fn consumer(topic: &str, isolation_level: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .set("group.id", unique("pingpipe-test-group"))
        .set("isolation.level", isolation_level)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// Reads record values until `done` says the list is complete; panics past the deadline.
/// Blocking: call it from a blocking context (a plain test, or `spawn_blocking`).
pub fn read_until(consumer: &BaseConsumer, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + TIMEOUT;
    let mut values = Vec::new();
    while !done(&values) {
        assert!(
            Instant::now() < deadline,
            "only {} records arrived within {TIMEOUT:?}",
            values.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            values.push(message.payload().unwrap_or_default().to_vec());
        }
    }
    values
}

/// A child process (one of the binaries) whose stderr is kept line by line, to check what it
/// says while it runs and after it ended.
pub struct Process {
    pub child: tokio::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Reads stderr until the process closes it.
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Starts `program` with `args`, logging at `info`, killed when dropped.
    pub fn spawn(program: &str, args: &[String]) -> Process {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let mut reader = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Process {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Everything it has written to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until a line of stderr contains every one of `words`; panics after `within`.
    pub async fn wait_for_log(&self, words: &[&str], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| words.iter().all(|w| l.contains(w)))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {words:?} within {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (e.g. `-TERM`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal} {pid} failed");
    }

    /// The exit status, waiting at most `within`; afterwards [`Process::log`] holds all it said.
    pub async fn exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {within:?}:\n{}", self.log()))
            .unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(within, reader).await;
        }
        status
    }
}

/// The whole answer to `GET path` on `addr` (a bare HTTP/1.0 request, like curl's), head and
/// body; None when nothing answers within 5 s.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        Some(answer)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// The HTTP status of `GET path` on `addr`; None when nothing answers.
pub async fn http_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    http_get(addr, path)
        .await?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The value of an unlabelled metric in the Prometheus text of `GET /metrics` on `addr`.
pub async fn metric(addr: std::net::SocketAddr, name: &str) -> Option<f64> {
    let answer = http_get(addr, "/metrics").await?;
    let line = answer
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// Waits until `GET path` on `addr` answers `status`; panics after `within`, with `context()`.
pub async fn wait_for_status(
    addr: std::net::SocketAddr,
    path: &str,
    status: u16,
    within: Duration,
    context: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + within;
    while http_status(addr, path).await != Some(status) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {status} within {within:?}:\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback address with a port free right now (for a process that must be told its port).
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The peak resident memory of process `pid` (`VmHWM`), in MiB; 0 when it cannot be read (the
/// benchmarks' memory figures).
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
