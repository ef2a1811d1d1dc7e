//! A processing worker: runs `workers=N` members (4 by default) of GROUP on TOPIC with a
//! `Runner`, whose processor "works" on each record for `work=MICROS` and prints
//! `OK VALUE PARTITION OFFSET` for each one it processed. As the record's value decides
//! (a hash of it), `fail=PCT` percent of records fail their first try with a retriable
//! error and succeed on the next, `bad=PERMILLE` per mille fail every try with a
//! permanent error and `flaky=PERMILLE` per mille with a retriable one: those end in
//! `TOPIC.dlt` with the failure in their headers. `retry=topic` retries through
//! `TOPIC.retry` (non-blocking: `processing.retry.topic`) rather than in place,
//! `retry=tiers` through its delay tiers (a relay of `TOPIC.retry` must run);
//! `backoff=MS` is the first retry's wait (100).
//! `ordering=partition|key|unordered` sets `processing.ordering`, `session=MS` the group's
//! `session.timeout.ms` (how soon a killed worker's partitions go to the others).
//! `blocking=THREADS` runs the same processor as a `BlockingProcessor` whose work blocks
//! a thread of a pool of THREADS (`OnThreads`).
//!
//! Run the same command in several processes: they share the group's partitions. Each
//! stops gracefully (finishing and committing what it started) on SIGINT or SIGTERM, or
//! after `idle=MS` (10,000 by default) without a record once it has had partitions or a
//! record; it prints its counters to standard error.
//!
//! `cargo run -p kasio --example process_worker -- localhost:9092 billing orders fail=5 bad=5`

use kasio::{
    BlockingProcessor, ConsumerRecord, OnThreads, ProcessError, Processor, Stop,
    core::attempts_so_far, tokio::Runner,
};
use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// What every member's processor shares: the fates, and when a record last came.
struct Plan {
    work: Duration,
    fail_pct: u64,
    bad_permille: u64,
    flaky_permille: u64,
    started: Instant,
    /// Milliseconds since `started` at the last record or assignment, 0 before the first.
    last: AtomicU64,
}

impl Plan {
    /// The record's fate, the same in every process: a hash of its value.
    fn draw(value: &[u8]) -> u64 {
        value.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

struct Worker {
    plan: Arc<Plan>,
    /// Values that failed their first try in this process (their retry succeeds).
    tried: std::sync::Mutex<std::collections::HashSet<Vec<u8>>>,
}

impl Plan {
    /// Notes that something came now: a record, or partitions to read.
    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed.max(1), Ordering::Relaxed);
    }
}

impl Worker {
    /// The record's fate after its work, the same for the async and the blocking
    /// processor.
    fn judge(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
        let plan = &self.plan;
        let value = record.value.as_deref().unwrap_or_default();
        let d = Plan::draw(value);
        if d % 1000 < plan.bad_permille {
            return Err(ProcessError::permanent(std::io::Error::other(
                "the record cannot be processed",
            )));
        }
        if (d >> 32) % 1000 < plan.flaky_permille {
            return Err(ProcessError::retriable(std::io::Error::other(
                "the service is down",
            )));
        }
        // Only a first try fails: a retry topic's copy says it is not one.
        if (d >> 16) % 100 < plan.fail_pct
            && attempts_so_far(record) == 0
            && self.tried.lock().expect("lock").insert(value.to_vec())
        {
            return Err(ProcessError::retriable(std::io::Error::other(
                "the service is busy",
            )));
        }
        // One write per record, unbuffered: a killed worker's output holds every record
        // it processed, committed or not.
        let line = format!(
            "OK {} {} {}\n",
            String::from_utf8_lossy(value),
            record.partition,
            record.offset
        );
        std::io::stdout()
            .lock()
            .write_all(line.as_bytes())
            .map_err(ProcessError::terminal)
    }
}

impl Processor for Worker {
    fn assigned(&self, _partitions: &[kasio::TopicPartition]) {
        // The idle clock starts once the member has partitions, so a worker that joins
        // after the others finished everything stops too.
        self.plan.touch();
    }

    async fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
        self.plan.touch();
        if !self.plan.work.is_zero() {
            tokio::time::sleep(self.plan.work).await;
        }
        self.judge(record)
    }
}

/// The same worker, its work blocking a thread (`blocking=THREADS`).
struct BlockingWorker(Worker);

impl BlockingProcessor for BlockingWorker {
    fn assigned(&self, _partitions: &[kasio::TopicPartition]) {
        self.0.plan.touch();
    }

    fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
        self.0.plan.touch();
        if !self.0.plan.work.is_zero() {
            std::thread::sleep(self.0.plan.work);
        }
        self.0.judge(record)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, group, topic, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: process_worker BOOTSTRAP GROUP TOPIC [workers=N] [work=MICROS] \
                    [fail=PCT] [bad=PERMILLE] [flaky=PERMILLE] [retry=topic|tiers] [backoff=MS] \
                    [ordering=partition|key|unordered] [idle=MS] [session=MS] [blocking=THREADS]"
                .into(),
        );
    };
    let option = |name: &str| {
        rest.iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    };
    let workers = option("workers").unwrap_or("4");
    let idle = Duration::from_millis(option("idle").map_or(Ok(10_000), str::parse)?);
    let plan = Arc::new(Plan {
        work: Duration::from_micros(option("work").map_or(Ok(0), str::parse)?),
        fail_pct: option("fail").map_or(Ok(0), str::parse)?,
        bad_permille: option("bad").map_or(Ok(0), str::parse)?,
        flaky_permille: option("flaky").map_or(Ok(0), str::parse)?,
        started: Instant::now(),
        last: AtomicU64::new(0),
    });
    let (retry, delay) = match option("retry") {
        Some("topic") => ("{topic}.retry", "consumer"),
        Some("tiers") => ("{topic}.retry", "tiers"),
        _ => ("none", "consumer"),
    };
    let props = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("auto.commit.interval.ms", "1000"),
        ("processing.workers", workers),
        (
            "processing.ordering",
            option("ordering").unwrap_or("partition"),
        ),
        (
            "processing.retry.backoff.ms",
            option("backoff").unwrap_or("100"),
        ),
        ("processing.retry.topic", retry),
        ("processing.retry.topic.delay", delay),
        ("processing.dead.letter.headers", "connect,spring"),
        ("session.timeout.ms", option("session").unwrap_or("45000")),
    ];
    let shared = plan.clone();
    let worker = move || Worker {
        plan: shared.clone(),
        tried: std::sync::Mutex::default(),
    };
    let stop = Stop::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    tokio::spawn(stop_when_idle(stop.clone(), plan.clone(), idle));
    let topics = [topic.as_str()];
    match option("blocking") {
        Some(threads) => {
            let threads: usize = threads.parse()?;
            let runner = Runner::from_properties(props, &topics, move |_member| {
                OnThreads::new(BlockingWorker(worker()), threads)
            })?;
            serve(runner, stop).await
        }
        None => {
            serve(
                Runner::from_properties(props, &topics, move |_| worker())?,
                stop,
            )
            .await
        }
    }
}

/// Runs every member of `runner` until `stop`, and prints the counters.
async fn serve<P: Processor>(
    runner: Runner<P>,
    stop: Stop,
) -> Result<(), Box<dyn std::error::Error>> {
    // Each member a task of its own, so they spread over the runtime's threads.
    let members: Vec<_> = (0..runner.workers())
        .map(|i| {
            let (runner, stop) = (runner.clone(), stop.clone());
            tokio::spawn(async move {
                let result = runner.run_member(i, &stop).await;
                // One member failing stops the others: none runs on alone.
                stop.stop();
                result
            })
        })
        .collect();
    let mut failed = None;
    for m in members {
        if let Err(e) = m.await? {
            failed.get_or_insert(e);
        }
    }
    let c = runner.counters();
    eprintln!(
        "processed {} retried {} dead-lettered {} commits {}",
        c.processed, c.retried, c.dead_lettered, c.commits
    );
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn stop_on_signal(stop: Stop) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            stop.stop();
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    stop.stop();
}

async fn stop_when_idle(stop: Stop, plan: Arc<Plan>, idle: Duration) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = plan.last.load(Ordering::Relaxed);
        let now = u64::try_from(plan.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if last > 0 && now.saturating_sub(last) >= u64::try_from(idle.as_millis()).unwrap_or(0) {
            stop.stop();
            return;
        }
    }
}
