//! One integration suite for every runtime: the same scenarios (produce through faults and
//! broker failover, consume alone and in a group, admin) run on tokio, smol, async-std
//! (the smol adapter under async-std's executor) and plain threads (kasio-blocking), first
//! against kasio-mock and, for the `lab_` tests (run with `--ignored` once the lab is up),
//! against real Kafka on every listener and SASL mechanism.
#![allow(clippy::unwrap_used, missing_docs)]

use kasio_mock::{ClusterConfig, Fault, MockCluster};
use kasio_proto::{ApiKey, ErrorCode, records::Batches};
use kasio_registry::{Compatibility, RegistryError, Schema, Version};
use kasio_serde::{Deserializer, Json, OnBadRecord, Serializer, StringCodec};
use kasio_shell::{
    AdminError, AsyncRuntime, Call, Consumer, ConsumerEvent, Delivery, Ended, Ending, Fetched,
    NewTopic, Pending, ProduceError, Producer, Record, RegistryCall, Runtime, SchemaRegistry, Seek,
    SendError, TopicRef, TransactSession, TxnError, Typed, TypedConsumer, TypedError,
    TypedProducer, TypedSendError,
};
use std::{
    collections::{BTreeSet, HashSet},
    future::Future,
    marker::PhantomData,
    time::{Duration, Instant},
};

/// How a runtime runs the suite: its executor, and the waits it uses (async ones on the
/// async runtimes, blocking calls on threads).
trait Flavor: 'static {
    /// Names the flavour's topics in the lab, which every flavour shares.
    const NAME: &'static str;
    type R: Runtime;
    fn block_on<F: Future>(f: F) -> F::Output;
    fn send<'a>(
        p: &'a Producer<Self::R>,
        r: Record<'a>,
    ) -> impl Future<Output = Result<Delivery<Self::R>, SendError>> + 'a;
    fn poll(c: &Consumer<Self::R>, timeout: Duration) -> impl Future<Output = Option<Fetched>>;
    fn wait<T>(p: Pending<T, Self::R>) -> impl Future<Output = T>;
    fn call<T>(c: Call<T, Self::R>) -> impl Future<Output = Result<T, AdminError>>;
    fn registry<T>(c: RegistryCall<T, Self::R>) -> impl Future<Output = Result<T, RegistryError>>;
    fn next_in(
        s: &TransactSession<Self::R>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Fetched>, TxnError>>;
    fn end(
        s: &TransactSession<Self::R>,
        how: Ending,
    ) -> impl Future<Output = Result<Ended, TxnError>>;
    fn typed_send<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>(
        p: &mut TypedProducer<Self::R, K, V, KS, VS>,
        r: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> impl Future<Output = Result<Delivery<Self::R>, TypedSendError>>;
    fn typed_next<K, V, KD: Deserializer<K>, VD: Deserializer<V>>(
        c: &mut TypedConsumer<Self::R, K, V, KD, VD>,
        timeout: Duration,
    ) -> impl Future<Output = Option<Result<Typed<K, V>, TypedError>>>;
}

trait Executor: 'static {
    const NAME: &'static str;
    fn block_on<F: Future>(f: F) -> F::Output;
}

struct OnTokio;
impl Executor for OnTokio {
    const NAME: &'static str = "tokio";
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }
}

struct OnSmol;
impl Executor for OnSmol {
    const NAME: &'static str = "smol";
    fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
}

struct OnAsyncStd;
impl Executor for OnAsyncStd {
    const NAME: &'static str = "async-std";
    fn block_on<F: Future>(f: F) -> F::Output {
        async_std::task::block_on(f)
    }
}

struct Async<R, E>(PhantomData<(R, E)>);

impl<R: AsyncRuntime, E: Executor> Flavor for Async<R, E> {
    const NAME: &'static str = E::NAME;
    type R = R;
    fn block_on<F: Future>(f: F) -> F::Output {
        E::block_on(f)
    }
    fn send<'a>(
        p: &'a Producer<R>,
        r: Record<'a>,
    ) -> impl Future<Output = Result<Delivery<R>, SendError>> + 'a {
        p.send(r)
    }
    async fn poll(c: &Consumer<R>, timeout: Duration) -> Option<Fetched> {
        let next = c.next();
        let timer = R::sleep_until(Instant::now() + timeout);
        let mut next = std::pin::pin!(next);
        let mut timer = std::pin::pin!(timer);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(f) = next.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(f));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
    async fn wait<T>(p: Pending<T, R>) -> T {
        p.await
    }
    async fn call<T>(c: Call<T, R>) -> Result<T, AdminError> {
        c.await
    }
    async fn registry<T>(c: RegistryCall<T, R>) -> Result<T, RegistryError> {
        c.await
    }
    async fn next_in(
        s: &TransactSession<R>,
        timeout: Duration,
    ) -> Result<Option<Fetched>, TxnError> {
        let next = s.next();
        let timer = R::sleep_until(Instant::now() + timeout);
        let mut next = std::pin::pin!(next);
        let mut timer = std::pin::pin!(timer);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(f) = next.as_mut().poll(cx) {
                return std::task::Poll::Ready(f.map(Some));
            }
            timer.as_mut().poll(cx).map(|()| Ok(None))
        })
        .await
    }
    async fn end(s: &TransactSession<R>, how: Ending) -> Result<Ended, TxnError> {
        s.end(how).await
    }
    async fn typed_send<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>(
        p: &mut TypedProducer<R, K, V, KS, VS>,
        r: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<Delivery<R>, TypedSendError> {
        p.send(r, key, value).await
    }
    async fn typed_next<K, V, KD: Deserializer<K>, VD: Deserializer<V>>(
        c: &mut TypedConsumer<R, K, V, KD, VD>,
        timeout: Duration,
    ) -> Option<Result<Typed<K, V>, TypedError>> {
        let next = c.next();
        let timer = R::sleep_until(Instant::now() + timeout);
        let mut next = std::pin::pin!(next);
        let mut timer = std::pin::pin!(timer);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(got) = next.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(got));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
}

/// Plain threads: every wait is a blocking call, so the suite's futures are always ready;
/// one that is not would mean the blocking API awaited something, and fails the test.
struct Blocking;

impl Flavor for Blocking {
    const NAME: &'static str = "blocking";
    type R = kasio_blocking::Threads;
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the blocking flavour awaited"),
        }
    }
    fn send<'a>(
        p: &'a Producer<Self::R>,
        r: Record<'a>,
    ) -> impl Future<Output = Result<Delivery<Self::R>, SendError>> + 'a {
        std::future::ready(p.send_blocking(r))
    }
    fn poll(c: &Consumer<Self::R>, timeout: Duration) -> impl Future<Output = Option<Fetched>> {
        std::future::ready(c.poll(timeout))
    }
    fn wait<T>(p: Pending<T, Self::R>) -> impl Future<Output = T> {
        std::future::ready(p.wait())
    }
    fn call<T>(c: Call<T, Self::R>) -> impl Future<Output = Result<T, AdminError>> {
        std::future::ready(c.wait())
    }
    fn registry<T>(c: RegistryCall<T, Self::R>) -> impl Future<Output = Result<T, RegistryError>> {
        std::future::ready(c.wait())
    }
    fn next_in(
        s: &TransactSession<Self::R>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Fetched>, TxnError>> {
        std::future::ready(s.poll(timeout))
    }
    fn end(
        s: &TransactSession<Self::R>,
        how: Ending,
    ) -> impl Future<Output = Result<Ended, TxnError>> {
        std::future::ready(s.end_blocking(how))
    }
    fn typed_send<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>(
        p: &mut TypedProducer<Self::R, K, V, KS, VS>,
        r: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> impl Future<Output = Result<Delivery<Self::R>, TypedSendError>> {
        std::future::ready(p.send_blocking(r, key, value))
    }
    fn typed_next<K, V, KD: Deserializer<K>, VD: Deserializer<V>>(
        c: &mut TypedConsumer<Self::R, K, V, KD, VD>,
        timeout: Duration,
    ) -> impl Future<Output = Option<Result<Typed<K, V>, TypedError>>> {
        std::future::ready(c.poll(timeout))
    }
}

type Tokio = Async<kasio_tokio::Tokio, OnTokio>;
type Smol = Async<kasio_smol::Smol, OnSmol>;
type AsyncStd = Async<kasio_smol::Smol, OnAsyncStd>;

/// The values (decimal numbers) stored in each partition of a mock topic.
fn stored(cluster: &MockCluster, topic: &'static str, partitions: i32) -> Vec<Vec<u64>> {
    (0..partitions)
        .map(|p| {
            let bytes = cluster
                .with(move |c| c.read(topic, p, 0))
                .flatten()
                .unwrap();
            let mut out = Vec::new();
            for b in Batches::new(bytes) {
                let kasio_proto::records::Batch::V2(b) = b.unwrap() else {
                    panic!("legacy batch");
                };
                for r in b.records().unwrap() {
                    let v = r.unwrap().value.unwrap();
                    out.push(std::str::from_utf8(&v).unwrap().parse().unwrap());
                }
            }
            out
        })
        .collect()
}

fn mock(brokers: i32, topic: &'static str, partitions: i32) -> MockCluster {
    let cluster = MockCluster::start(ClusterConfig {
        brokers,
        ..Default::default()
    })
    .unwrap();
    cluster
        .with(move |c| c.create_topic(topic, partitions).map(|_| ()))
        .unwrap()
        .unwrap();
    cluster
}

/// Every number of `0..n` exactly once across the logs, in increasing order in each.
fn assert_exactly_once_in_order(logs: &[Vec<u64>], n: u64) {
    for log in logs {
        assert!(
            log.windows(2).all(|w| w[0] < w[1]),
            "order kept per partition"
        );
    }
    let mut all: Vec<u64> = logs.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "every record exactly once");
}

/// Sends `range` keyed by `i % keys`, calling `between` before each record; waits for
/// every delivery and checks no offset is reported twice.
async fn produce<F: Flavor>(
    producer: &Producer<F::R>,
    topic: &str,
    range: std::ops::Range<u64>,
    mut between: impl FnMut(u64),
) {
    let mut deliveries = Vec::new();
    for i in range {
        between(i);
        let key = format!("k{}", i % 50);
        let value = i.to_string();
        let record = Record::new(topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        deliveries.push(F::send(producer, record).await.unwrap());
    }
    F::wait(producer.flush()).await;
    let mut placed = HashSet::new();
    for d in deliveries {
        let m = F::wait(d).await.unwrap();
        assert!(
            placed.insert((m.partition, m.offset)),
            "offset reported twice"
        );
    }
}

async fn produces_through_faults_exactly_once_in_order<F: Flavor>() {
    let cluster = mock(3, "t", 6);
    let producer = Producer::<F::R>::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("linger.ms", "2"),
        ("request.timeout.ms", "2000"),
        ("delivery.timeout.ms", "60000"),
    ])
    .unwrap();
    produce::<F>(&producer, "t", 0..20_000, |i| {
        if i % 4000 == 1000 {
            cluster.with(|c| {
                c.inject(Fault::FailNext {
                    api: ApiKey::Produce,
                    count: 2,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                c.inject(Fault::DropConnections { broker: 2 });
                c.inject(Fault::Blackhole {
                    api: ApiKey::Produce,
                    count: 1,
                });
            });
        }
    })
    .await;
    F::wait(producer.close()).await;
    assert_exactly_once_in_order(&stored(&cluster, "t", 6), 20_000);
    cluster.stop();
}

/// A broker crashes with batches in flight and comes back: nothing is lost or doubled.
async fn survives_a_broker_stopping_and_starting<F: Flavor>() {
    let cluster = mock(3, "f", 6);
    let producer = Producer::<F::R>::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("linger.ms", "1"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "60000"),
    ])
    .unwrap();
    produce::<F>(&producer, "f", 0..6000, |i| match i {
        2000 => {
            cluster.with(|c| c.inject(Fault::StopBroker { broker: 2 }));
        }
        4000 => {
            cluster.with(|c| c.inject(Fault::StartBroker { broker: 2 }));
        }
        _ => {}
    })
    .await;
    F::wait(producer.close()).await;
    assert_exactly_once_in_order(&stored(&cluster, "f", 6), 6000);
    cluster.stop();
}

async fn an_unreachable_bootstrap_fails_sends_after_max_block<F: Flavor>() {
    let producer = Producer::<F::R>::from_properties([
        ("bootstrap.servers", "127.0.0.1:1"),
        ("max.block.ms", "300"),
    ])
    .unwrap();
    let started = Instant::now();
    let result = match F::send(&producer, Record::new("t").value(b"x")).await {
        Ok(d) => F::wait(d).await,
        Err(e) => Err(e.into()),
    };
    assert_eq!(result, Err(ProduceError::UnknownTopic));
    assert!(started.elapsed() < Duration::from_secs(5));
    F::wait(producer.close()).await;
}

/// Reads every assigned partition to its end, calling `each` with the count of batches.
async fn read_to_end<F: Flavor>(
    consumer: &Consumer<F::R>,
    partitions: i32,
    mut each: impl FnMut(usize),
) -> Vec<Vec<u64>> {
    let mut got = vec![Vec::new(); partitions as usize];
    let mut ends = HashSet::new();
    let mut batches = 0;
    while ends.len() < partitions as usize {
        match F::poll(consumer, Duration::from_secs(30)).await {
            Some(Fetched::Batch(b)) => {
                batches += 1;
                each(batches);
                let p = b.partition as usize;
                b.for_each(|r| {
                    got[p].push(
                        std::str::from_utf8(r.value.unwrap())
                            .unwrap()
                            .parse()
                            .unwrap(),
                    );
                })
                .unwrap();
            }
            Some(Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. })) => {
                ends.insert(partition);
            }
            other => panic!("{other:?}"),
        }
    }
    got
}

async fn consumes_what_was_produced_through_dropped_connections<F: Flavor>() {
    let cluster = mock(2, "c", 4);
    let producer =
        Producer::<F::R>::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())])
            .unwrap();
    produce::<F>(&producer, "c", 0..20_000, |_| {}).await;
    F::wait(producer.close()).await;
    let consumer = Consumer::<F::R>::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("max.partition.fetch.bytes", "4096"),
    ])
    .unwrap();
    consumer.assign([("c", 0), ("c", 1), ("c", 2), ("c", 3)]);
    for p in 0..4 {
        consumer.seek("c", p, Seek::Beginning);
    }
    let got = read_to_end::<F>(&consumer, 4, |batches| {
        if batches % 20 == 0 {
            cluster.with(|c| c.inject(Fault::DropConnections { broker: 1 }));
        }
    })
    .await;
    F::wait(consumer.close()).await;
    assert_eq!(
        got,
        stored(&cluster, "c", 4),
        "every partition exactly as stored"
    );
    cluster.stop();
}

async fn consumes_in_a_group_and_commits<F: Flavor>() {
    let cluster = mock(2, "g", 4);
    let props = vec![("bootstrap.servers".into(), cluster.bootstrap())];
    group_round::<F>(&props, "g", 10_000).await;
    cluster.stop();
}

/// Two members of one classic group read a fresh topic between them and commit what they
/// processed; the group's committed offsets add up to every record.
async fn group_round<F: Flavor>(props: &[(String, String)], topic: &str, n: u64) {
    let producer = Producer::<F::R>::from_properties(borrowed(props)).unwrap();
    produce::<F>(&producer, topic, 0..n, |_| {}).await;
    F::wait(producer.close()).await;
    let group = format!("{topic}-group");
    let member = || {
        let c = Consumer::<F::R>::from_properties(borrowed(props).chain([
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("heartbeat.interval.ms", "200"),
        ]))
        .unwrap();
        c.subscribe(&[topic]).unwrap();
        c
    };
    let members = [member(), member()];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < n {
        assert!(
            Instant::now() < deadline,
            "only {} records read",
            seen.len()
        );
        for m in &members {
            let Some(fetched) = F::poll(m, Duration::from_millis(50)).await else {
                continue;
            };
            if let Fetched::Batch(b) = fetched {
                let (topic, partition) = (b.topic.clone(), b.partition);
                let mut last = None;
                b.for_each(|r| {
                    seen.insert(
                        std::str::from_utf8(r.value.unwrap())
                            .unwrap()
                            .parse::<u64>()
                            .unwrap(),
                    );
                    last = Some(r.offset);
                })
                .unwrap();
                if let Some(last) = last {
                    // Not waited for, as the Java client's commitAsync: the committed
                    // offsets are checked below.
                    drop(m.commit([(&topic, partition, last + 1)]));
                }
            }
        }
    }
    assert_eq!(seen, (0..n).collect::<BTreeSet<_>>());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(props)).unwrap();
    let ends = n as i64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Let the commits land: the members keep being polled meanwhile.
        for m in &members {
            let _ = F::poll(m, Duration::from_millis(20)).await;
        }
        let committed: i64 = F::call(admin.group_offsets(&group))
            .await
            .unwrap()
            .iter()
            .map(|o| o.offset)
            .sum();
        if committed == ends {
            break;
        }
        assert!(Instant::now() < deadline, "committed {committed} of {ends}");
    }
    for m in &members {
        m.unsubscribe();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while members.iter().any(Consumer::in_group) {
        assert!(Instant::now() < deadline, "members never left");
        for m in &members {
            let _ = F::poll(m, Duration::from_millis(20)).await;
        }
    }
    for m in &members {
        F::wait(m.close()).await;
    }
    F::wait(admin.close()).await;
}

/// `close` leaves the group after auto-committing what was handed out (as the Java client's
/// close): a member that read everything and closed leaves nothing for the next member,
/// which gets every partition at once rather than after the session timeout.
async fn close_leaves_the_group_after_committing<F: Flavor>() {
    let cluster = mock(1, "closing", 4);
    let props = vec![("bootstrap.servers".into(), cluster.bootstrap())];
    let producer = Producer::<F::R>::from_properties(borrowed(&props)).unwrap();
    produce::<F>(&producer, "closing", 0..2000, |_| {}).await;
    F::wait(producer.close()).await;
    let member = || {
        let c = Consumer::<F::R>::from_properties(borrowed(&props).chain([
            ("group.id", "closing-group"),
            ("auto.offset.reset", "earliest"),
            // Only the close can commit within the test.
            ("auto.commit.interval.ms", "600000"),
        ]))
        .unwrap();
        c.subscribe(&["closing"]).unwrap();
        c
    };
    let first = member();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while read < 2000 {
        assert!(Instant::now() < deadline, "read {read}");
        if let Some(Fetched::Batch(b)) = F::poll(&first, Duration::from_millis(100)).await {
            b.for_each(|_| read += 1).unwrap();
        }
    }
    F::wait(first.close()).await;
    let second = member();
    let (mut assigned, mut again) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while assigned < 4 {
        assert!(Instant::now() < deadline, "{assigned} partitions assigned");
        match F::poll(&second, Duration::from_millis(100)).await {
            Some(Fetched::Event(ConsumerEvent::Assigned { partitions })) => {
                assigned += partitions.len();
            }
            Some(Fetched::Batch(b)) => b.for_each(|_| again += 1).unwrap(),
            _ => {}
        }
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Some(Fetched::Batch(b)) = F::poll(&second, Duration::from_millis(100)).await {
            b.for_each(|_| again += 1).unwrap();
        }
    }
    assert_eq!(
        again, 0,
        "records read again after the first member's close"
    );
    F::wait(second.close()).await;
    cluster.stop();
}

/// Two members of a new group share a one-partition topic: the member left without a
/// partition commits its positions, and the commit resolves at once (nothing to commit);
/// the owner's commit resolves once stored; a consumer without a group gets an error.
async fn commits_resolve_with_or_without_partitions<F: Flavor>() {
    let cluster = mock(1, "lonely", 1);
    let props = vec![("bootstrap.servers".into(), cluster.bootstrap())];
    let producer = Producer::<F::R>::from_properties(borrowed(&props)).unwrap();
    produce::<F>(&producer, "lonely", 0..1000, |_| {}).await;
    F::wait(producer.close()).await;
    let member = || {
        let c = Consumer::<F::R>::from_properties(borrowed(&props).chain([
            ("group.id", "lonely-group"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ]))
        .unwrap();
        c.subscribe(&["lonely"]).unwrap();
        c
    };
    let (first, second) = (member(), member());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < 1000 {
        assert!(Instant::now() < deadline, "read {read}");
        for m in [&first, &second] {
            if let Some(Fetched::Batch(b)) = F::poll(m, Duration::from_millis(20)).await {
                b.for_each(|_| read += 1).unwrap();
            }
        }
    }
    let (owner, idle) = if first.assignment().is_empty() {
        (&second, &first)
    } else {
        (&first, &second)
    };
    assert!(idle.assignment().is_empty(), "one partition, two owners");
    let started = Instant::now();
    F::wait(idle.commit_positions()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a commit of nothing took {:?}",
        started.elapsed()
    );
    F::wait(owner.commit_positions()).await.unwrap();
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let committed = F::call(admin.group_offsets("lonely-group")).await.unwrap();
    assert_eq!(
        committed.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![1000]
    );
    let loner = Consumer::<F::R>::from_properties(borrowed(&props)).unwrap();
    assert_eq!(
        F::wait(loner.commit([("lonely", 0, 5)])).await,
        Err(kasio_shell::ConsumeError::NoGroup)
    );
    F::wait(first.close()).await;
    F::wait(second.close()).await;
    F::wait(loner.close()).await;
    F::wait(admin.close()).await;
    cluster.stop();
}

/// The last handles dropped without `close`: the producer still delivers every record it
/// buffered, and the consumer still leaves its group.
async fn dropped_handles_deliver_and_leave<F: Flavor>(props: &[(String, String)], topic: &str) {
    const N: u64 = 10_000;
    let producer = Producer::<F::R>::from_properties(borrowed(props)).unwrap();
    for i in 0..N {
        let value = i.to_string();
        let record = Record::new(topic)
            .key(value.as_bytes())
            .value(value.as_bytes());
        // The delivery is dropped too: nobody waits for any record.
        drop(F::send(&producer, record).await.unwrap());
    }
    drop(producer);

    let reader = Consumer::<F::R>::from_properties(borrowed(props)).unwrap();
    reader.assign([(topic, 0), (topic, 1), (topic, 2)]);
    for p in 0..3 {
        reader.seek(topic, p, Seek::Beginning);
    }
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < usize::try_from(N).unwrap() {
        assert!(
            Instant::now() < deadline,
            "{} of {N} records read",
            seen.len()
        );
        if let Some(Fetched::Batch(b)) = F::poll(&reader, Duration::from_millis(100)).await {
            b.for_each(|r| {
                let v: u64 = std::str::from_utf8(r.value.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(seen.insert(v), "record {v} read twice");
            })
            .unwrap();
        }
    }
    assert_eq!(seen, (0..N).collect());
    F::wait(reader.close()).await;

    let group = format!("{topic}-group");
    let member = Consumer::<F::R>::from_properties(borrowed(props).chain([
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
    ]))
    .unwrap();
    member.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "never assigned");
        if let Some(Fetched::Event(ConsumerEvent::Assigned { .. })) =
            F::poll(&member, Duration::from_millis(100)).await
        {
            break;
        }
    }
    drop(member);
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(props)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let described = F::call(admin.describe_groups(&[group.as_str()]))
            .await
            .unwrap();
        let members = described[0].result.as_ref().map_or(0, |d| d.members.len());
        if members == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{members} member(s) still in {group}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    F::wait(admin.close()).await;
}

async fn dropped_handles_deliver_and_leave_the_mock<F: Flavor>() {
    let cluster = mock(1, "dropped", 3);
    let props = vec![("bootstrap.servers".into(), cluster.bootstrap())];
    dropped_handles_deliver_and_leave::<F>(&props, "dropped").await;
    cluster.stop();
}

async fn lab_dropped_handles<F: Flavor>() {
    let props = lab("PLAINTEXT", None);
    let topic = format!("suite-{}-dropped-{}", F::NAME, std::process::id());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let created = F::call(admin.create_topics(&[NewTopic::new(&topic, 3, 1)], false))
        .await
        .unwrap();
    assert!(created[0].error.is_none(), "{created:?}");
    dropped_handles_deliver_and_leave::<F>(&props, &topic).await;
    let _ = F::call(admin.delete_topics(&[TopicRef::Name(topic)])).await;
    F::wait(admin.close()).await;
}

/// Transactions over two topics: the committed ones are read by read_committed, the
/// aborted one never, on either topic.
async fn transactions_are_all_or_nothing<F: Flavor>() {
    let cluster = mock(3, "x", 3);
    cluster
        .with(|c| c.create_topic("y", 2).map(|_| ()))
        .unwrap()
        .unwrap();
    let id = format!("suite-{}", F::NAME);
    let producer = Producer::<F::R>::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("transactional.id", id.as_str()),
    ])
    .unwrap();
    F::wait(producer.init_transactions()).await.unwrap();
    for (round, commit) in [(0u64, true), (1, false), (2, true)] {
        producer.begin_transaction().unwrap();
        for i in round * 100..round * 100 + 100 {
            let v = i.to_string();
            for topic in ["x", "y"] {
                // The commit waits for every record; an abort fails those not yet sent.
                let _delivery = F::send(&producer, Record::new(topic).value(v.as_bytes()))
                    .await
                    .unwrap();
            }
        }
        let ended = if commit {
            producer.commit_transaction()
        } else {
            producer.abort_transaction()
        };
        F::wait(ended).await.unwrap();
    }
    F::wait(producer.close()).await;
    let want: Vec<u64> = (0..100).chain(200..300).collect();
    for (topic, partitions) in [("x", 3), ("y", 2)] {
        let consumer = Consumer::<F::R>::from_properties([
            ("bootstrap.servers", cluster.bootstrap().as_str()),
            ("isolation.level", "read_committed"),
        ])
        .unwrap();
        let parts: Vec<(&str, i32)> = (0..partitions).map(|p| (topic, p)).collect();
        consumer.assign(&parts);
        for p in 0..partitions {
            consumer.seek(topic, p, Seek::Beginning);
        }
        let mut got: Vec<u64> = read_to_end::<F>(&consumer, partitions, |_| {})
            .await
            .into_iter()
            .flatten()
            .collect();
        got.sort_unstable();
        F::wait(consumer.close()).await;
        assert_eq!(got, want, "{topic}");
    }
    cluster.stop();
}

/// Consume-transform-produce with the session: a copy of 3,000 records, one transaction
/// per batch read, while commits fail (an abortable EndTxn, a TxnOffsetCommit refused for
/// its generation) and a second member joins the group and leaves again, revoking
/// partitions mid-transaction. Aborted transactions are read again, so the copy, read
/// with read_committed, holds every record exactly once.
async fn copies_exactly_once_with_a_session<F: Flavor>() {
    const N: u64 = 3000;
    let cluster = mock(3, "src", 3);
    cluster
        .with(|c| c.create_topic("dst", 3).map(|_| ()))
        .unwrap()
        .unwrap();
    let bootstrap = cluster.bootstrap();
    // Small batches, so the copy takes many transactions.
    let producer = Producer::<F::R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("batch.size", "1000"),
    ])
    .unwrap();
    produce::<F>(&producer, "src", 0..N, |_| {}).await;
    F::wait(producer.close()).await;

    let group = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "copy"),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("max.partition.fetch.bytes", "2000"),
    ];
    let consumer = Consumer::<F::R>::from_properties(group).unwrap();
    let id = format!("suite-copy-{}", F::NAME);
    let copier = Producer::<F::R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", id.as_str()),
        ("linger.ms", "1"),
    ])
    .unwrap();
    F::wait(copier.init_transactions()).await.unwrap();
    consumer.subscribe(&["src"]).unwrap();
    let session = TransactSession::new(&consumer, &copier);
    let (mut committed, mut aborted, mut doomed, mut batches, mut waits) = (0, 0, 0, 0, 0);
    // Partitions read to their end since the last assignment change or abort.
    let mut ends = HashSet::new();
    let mut other: Option<Consumer<F::R>> = None;
    let (mut rebalancing, mut joined) = (false, false);
    while ends.len() < 3 || session.state() != kasio_shell::ReadsState::Idle {
        let fetched = F::next_in(&session, Duration::from_secs(2)).await.unwrap();
        match fetched {
            Some(Fetched::Batch(batch)) => {
                let mut values = Vec::new();
                batch
                    .for_each(|r| values.push(r.value.unwrap().to_vec()))
                    .unwrap();
                for v in &values {
                    // The commit waits for every record of the transaction.
                    drop(F::send(&copier, Record::new("dst").value(v)).await.unwrap());
                }
                // Two batches a transaction; once the second member joined, one stays
                // open until the rebalance takes partitions away in its middle.
                batches += 1;
                if batches % 2 == 1 || rebalancing {
                    continue;
                }
            }
            Some(Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. })) => {
                ends.insert(partition);
                if ends.len() < 3 || session.state() == kasio_shell::ReadsState::Idle || rebalancing
                {
                    continue;
                }
            }
            Some(Fetched::Event(
                ConsumerEvent::Assigned { .. }
                | ConsumerEvent::Revoked { .. }
                | ConsumerEvent::Lost { .. },
            )) => {
                ends.clear();
                if session.state() != kasio_shell::ReadsState::Doomed {
                    continue;
                }
                rebalancing = false;
            }
            Some(_) => continue,
            None if rebalancing => {
                waits += 1;
                assert!(waits < 15, "no rebalance came");
                continue;
            }
            None => {
                // Nothing to read: the second member holds what is left.
                if let Some(second) = other.take() {
                    second.unsubscribe();
                    // Closed once it has left, so the group need not wait out its session.
                    while second.in_group() {
                        let _ = F::poll(&second, Duration::from_millis(100)).await;
                    }
                    F::wait(second.close()).await;
                }
                waits += 1;
                assert!(
                    waits < 15,
                    "stalled: {committed} committed, {aborted} aborted"
                );
                continue;
            }
        }
        match committed + aborted {
            2 => {
                cluster.with(|c| {
                    c.inject(Fault::FailNext {
                        api: ApiKey::EndTxn,
                        count: 1,
                        error: ErrorCode::TransactionAbortable,
                    })
                });
            }
            4 => {
                cluster.with(|c| {
                    c.inject(Fault::FailNext {
                        api: ApiKey::TxnOffsetCommit,
                        count: 1,
                        error: ErrorCode::IllegalGeneration,
                    })
                });
            }
            6 if !joined => {
                joined = true;
                let second = Consumer::<F::R>::from_properties(group).unwrap();
                second.subscribe(&["src"]).unwrap();
                other = Some(second);
                rebalancing = true;
                continue;
            }
            _ => {}
        }
        if session.state() == kasio_shell::ReadsState::Doomed {
            doomed += 1;
        }
        match F::end(&session, Ending::TryCommit).await.unwrap() {
            Ended::Committed => committed += 1,
            Ended::Aborted => {
                aborted += 1;
                ends.clear();
            }
            _ => {}
        }
    }
    assert!(aborted >= 3, "{committed} committed, {aborted} aborted");
    assert!(doomed >= 1, "no transaction was doomed by the rebalance");
    F::wait(consumer.close()).await;
    F::wait(copier.close()).await;

    let reader = Consumer::<F::R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
    ])
    .unwrap();
    reader.assign([("dst", 0), ("dst", 1), ("dst", 2)]);
    for p in 0..3 {
        reader.seek("dst", p, Seek::Beginning);
    }
    let mut got: Vec<u64> = read_to_end::<F>(&reader, 3, |_| {})
        .await
        .into_iter()
        .flatten()
        .collect();
    F::wait(reader.close()).await;
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "every record exactly once");
    cluster.stop();
}

async fn admin_calls_survive_dropped_connections<F: Flavor>() {
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        ..Default::default()
    })
    .unwrap();
    let admin = kasio_shell::Admin::<F::R>::from_properties([(
        "bootstrap.servers",
        cluster.bootstrap().as_str(),
    )])
    .unwrap();
    cluster.with(|c| {
        c.inject(Fault::FailNext {
            api: ApiKey::CreateTopics,
            count: 2,
            error: ErrorCode::NotController,
        });
    });
    let names: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    // Every call is started before any is waited for, so they run concurrently.
    let calls: Vec<_> = names
        .iter()
        .map(|n| admin.create_topics(&[NewTopic::new(n, 2, 1)], false))
        .collect();
    cluster.with(|c| c.inject(Fault::DropConnections { broker: 1 }));
    for call in calls {
        let rs = F::call(call).await.unwrap();
        assert!(rs[0].error.is_none(), "{rs:?}");
    }
    let mut got: Vec<String> = F::call(admin.list_topics(false))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    got.sort();
    assert_eq!(got, names);
    let described = F::call(admin.describe_topics(&["t3"])).await.unwrap();
    assert_eq!(described[0].result.as_ref().unwrap().partitions.len(), 2);
    let deleted = F::call(admin.delete_topics(&[TopicRef::Name("t3".into())]))
        .await
        .unwrap();
    assert!(deleted[0].error.is_none());
    F::wait(admin.close()).await;
    assert_eq!(
        F::call(admin.describe_cluster()).await.map(|_| ()),
        Err(AdminError::Closed)
    );
    cluster.stop();
}

/// The lab's address for `listener`, and the properties that reach it with `mechanism`.
fn lab(listener: &str, mechanism: Option<&str>) -> Vec<(String, String)> {
    let env = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} unset: run with `scripts/kafka env`"))
    };
    let mut props = vec![
        (
            "bootstrap.servers".into(),
            env(&format!("KASIO_LAB_{listener}")),
        ),
        ("security.protocol".into(), listener.to_owned()),
    ];
    if listener.ends_with("SSL") {
        props.push(("ssl.ca.location".into(), env("KASIO_LAB_CA")));
    }
    if let Some(m) = mechanism {
        props.push(("sasl.mechanism".into(), m.to_owned()));
        props.push(("sasl.username".into(), env("KASIO_LAB_USER")));
        if m != "OAUTHBEARER" {
            props.push(("sasl.password".into(), env("KASIO_LAB_PASSWORD")));
        }
    }
    props
}

fn borrowed(props: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    props.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Creates a topic, produces to it and reads it back, all over one listener and mechanism.
async fn lab_round_trip<F: Flavor>(listener: &str, mechanism: Option<&str>, n: u64) {
    let props = lab(listener, mechanism);
    let topic = format!(
        "suite-{}-{}-{}-{}",
        F::NAME,
        listener.to_lowercase(),
        mechanism.unwrap_or("none").to_lowercase(),
        std::process::id()
    );
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let created = F::call(admin.create_topics(&[NewTopic::new(&topic, 3, 1)], false))
        .await
        .unwrap();
    assert!(created[0].error.is_none(), "{created:?}");
    let producer = Producer::<F::R>::from_properties(borrowed(&props)).unwrap();
    produce::<F>(&producer, &topic, 0..n, |_| {}).await;
    F::wait(producer.close()).await;
    let consumer = Consumer::<F::R>::from_properties(borrowed(&props)).unwrap();
    consumer.assign([(&topic, 0), (&topic, 1), (&topic, 2)]);
    for p in 0..3 {
        consumer.seek(&topic, p, Seek::Beginning);
    }
    let got = read_to_end::<F>(&consumer, 3, |_| {}).await;
    F::wait(consumer.close()).await;
    assert_exactly_once_in_order(&got, n);
    let deleted = F::call(admin.delete_topics(&[TopicRef::Name(topic.clone())]))
        .await
        .unwrap();
    assert!(deleted[0].error.is_none(), "{deleted:?}");
    F::wait(admin.close()).await;
}

async fn lab_plaintext<F: Flavor>() {
    lab_round_trip::<F>("PLAINTEXT", None, 100_000).await;
}

async fn lab_group<F: Flavor>() {
    let props = lab("PLAINTEXT", None);
    let topic = format!("suite-{}-group-{}", F::NAME, std::process::id());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let created = F::call(admin.create_topics(&[NewTopic::new(&topic, 4, 1)], false))
        .await
        .unwrap();
    assert!(created[0].error.is_none(), "{created:?}");
    group_round::<F>(&props, &topic, 20_000).await;
    let _ = F::call(admin.delete_topics(&[TopicRef::Name(topic)])).await;
    F::wait(admin.close()).await;
}

async fn lab_every_listener_and_mechanism<F: Flavor>() {
    lab_round_trip::<F>("SSL", None, 2000).await;
    for listener in ["SASL_PLAINTEXT", "SASL_SSL"] {
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
            lab_round_trip::<F>(listener, Some(mechanism), 2000).await;
        }
    }
}

/// A registry on a local socket that answers every third request and refuses the two
/// before it with a 503, closing the connection after each answer; it counts requests.
fn flaky_registry() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ccompat", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let (status, answer) = if !head.starts_with("GET /ccompat/schemas/ids/5 ") {
                (404, r#"{"error_code":40403,"message":"Schema not found"}"#)
            } else if n.is_multiple_of(3) {
                (200, r#"{"schema":"\"string\""}"#)
            } else {
                (503, r#"{"error_code":50301,"message":"not ready"}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, count)
}

async fn registry_calls_retry_through_a_flaky_server<F: Flavor>() {
    let (url, count) = flaky_registry();
    let registry = SchemaRegistry::<F::R>::from_properties([
        ("url", url.as_str()),
        ("retries.wait.ms", "5"),
        ("retries.max.wait.ms", "20"),
    ])
    .unwrap();
    // Four callers at once: one request, retried twice, answers them all.
    let calls: Vec<_> = (0..4).map(|_| registry.schema_by_id(5)).collect();
    for call in calls {
        assert_eq!(
            F::registry(call).await.unwrap().text,
            "\"string\"",
            "{}",
            F::NAME
        );
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(
        F::registry(registry.schema_by_id(5)).await.unwrap().text,
        "\"string\""
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3, "cached");
    let missing = F::registry(registry.schema_by_id(6)).await.unwrap_err();
    assert!(
        missing.is_not_found() && missing.error_code() == Some(40403),
        "{missing}"
    );
    F::wait(registry.close()).await;
    let closed = F::registry(registry.schema_by_id(9)).await;
    assert_eq!(closed.unwrap_err(), RegistryError::Closed);

    let down = SchemaRegistry::<F::R>::from_properties([
        ("url", "http://127.0.0.1:1"),
        ("max.retries", "2"),
        ("retries.wait.ms", "5"),
    ])
    .unwrap();
    let started = Instant::now();
    let err = F::registry(down.subjects()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

/// Typed records through the mock: a typed producer's keys and JSON values, a raw record
/// whose value is not JSON at offset 5 and a tombstone at offset 7, read back under each
/// bad-record policy.
async fn typed_records_under_each_bad_record_policy<F: Flavor>() {
    let cluster = mock(1, "typed", 1);
    let bootstrap = cluster.bootstrap();
    let producer =
        Producer::<F::R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    let mut typed = producer.clone().typed(StringCodec, Json::<Order>::new());
    for id in 0..10u64 {
        let key = format!("k{id}");
        let delivery = match id {
            5 => F::send(
                &producer,
                Record::new("typed").key(b"k5").value(b"not json"),
            )
            .await
            .unwrap(),
            7 => F::typed_send(&mut typed, Record::new("typed"), Some(key.as_str()), None)
                .await
                .unwrap(),
            _ => F::typed_send(
                &mut typed,
                Record::new("typed"),
                Some(key.as_str()),
                Some(&Order { id }),
            )
            .await
            .unwrap(),
        };
        assert_eq!(F::wait(delivery).await.unwrap().offset, id as i64);
    }
    F::wait(producer.close()).await;

    for policy in [OnBadRecord::Fail, OnBadRecord::Skip, OnBadRecord::Hand] {
        let consumer =
            Consumer::<F::R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
        consumer.assign([("typed", 0)]);
        consumer.seek("typed", 0, Seek::Beginning);
        let mut orders = consumer
            .typed(StringCodec, Json::<Order>::new())
            .on_bad_record(policy);
        let mut read = Vec::new();
        let mut bad = Vec::new();
        loop {
            match F::typed_next(&mut orders, Duration::from_secs(30))
                .await
                .unwrap()
            {
                Ok(Typed::Record(r)) => {
                    assert_eq!(r.key.as_deref(), Some(format!("k{}", r.offset).as_str()));
                    read.push((r.offset, r.value.map(|o| o.id)));
                }
                Ok(Typed::Bad(b)) => bad.push((b.record.offset, b.error.to_string())),
                Ok(Typed::Event(ConsumerEvent::EndOfPartition { .. })) => break,
                Ok(Typed::Event(other)) => panic!("{other:?}"),
                Err(TypedError::Record(e)) => {
                    bad.push((e.position.unwrap().1, e.to_string()));
                    // Stopped at it until stepped past.
                    let again = F::typed_next(&mut orders, Duration::from_secs(1)).await;
                    assert!(
                        matches!(again, Some(Err(TypedError::Record(ref e2))) if *e2 == e),
                        "{again:?}"
                    );
                    let raw = orders.skip_failed().unwrap();
                    assert_eq!(raw.value.as_deref(), Some(&b"not json"[..]));
                }
                Err(e) => panic!("{e}"),
            }
        }
        let want: Vec<_> = (0..10u64)
            .filter(|&i| i != 5)
            .map(|i| (i as i64, (i != 7).then_some(i)))
            .collect();
        assert_eq!(read, want, "{} {policy:?}", F::NAME);
        if policy == OnBadRecord::Skip {
            assert!(bad.is_empty());
            assert_eq!(orders.skipped(), 1);
        } else {
            assert_eq!(bad.len(), 1, "{bad:?}");
            assert_eq!(bad[0].0, 5);
            assert!(
                bad[0]
                    .1
                    .starts_with("value of typed-0@5: not the JSON expected"),
                "{}",
                bad[0].1
            );
        }
        F::wait(orders.consumer().close()).await;
    }
    cluster.stop();
}

/// A typed consumer fetching the writer's schema of each record from a registry that
/// answers 503 twice before the schema: one fetch (retried) serves every record of that
/// id; a record naming an id the registry does not have is a bad record.
async fn typed_consumer_fetches_schemas_through_a_flaky_registry<F: Flavor>() {
    use kasio_serde::{AvroDeserializer, wire};
    let (url, count) = flaky_registry();
    let registry = SchemaRegistry::<F::R>::from_properties([
        ("url", url.as_str()),
        ("retries.wait.ms", "5"),
        ("retries.max.wait.ms", "20"),
    ])
    .unwrap();
    let cluster = mock(1, "avro", 1);
    let bootstrap = cluster.bootstrap();
    let producer =
        Producer::<F::R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    for (i, id) in [5u32, 5, 6, 5].into_iter().enumerate() {
        let mut value = Vec::new();
        wire::frame(id, &mut value);
        // An Avro string: its zigzag length, then its bytes.
        let text = format!("s{i}");
        value.push((text.len() as u8) << 1);
        value.extend_from_slice(text.as_bytes());
        let d = F::send(&producer, Record::new("avro").value(&value))
            .await
            .unwrap();
        F::wait(d).await.unwrap();
    }
    F::wait(producer.close()).await;
    let consumer =
        Consumer::<F::R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    consumer.assign([("avro", 0)]);
    consumer.seek("avro", 0, Seek::Beginning);
    let mut strings = consumer
        .typed(
            StringCodec,
            AvroDeserializer::<String>::new(registry.clone()),
        )
        .with_registry(registry.clone())
        .on_bad_record(OnBadRecord::Hand);
    let mut got = Vec::new();
    loop {
        match F::typed_next(&mut strings, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap()
        {
            Typed::Record(r) => got.push(r.value.unwrap()),
            Typed::Bad(b) => got.push(format!("bad: {}", b.error.error)),
            Typed::Event(ConsumerEvent::EndOfPartition { .. }) => break,
            Typed::Event(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        ["s0", "s1", "bad: schema id 6 is not known (yet)", "s3"],
        "{}",
        F::NAME
    );
    // Two 503s and the schema for id 5, one 404 for id 6.
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
    F::wait(strings.consumer().close()).await;
    F::wait(registry.close()).await;

    // The registry gone: the record is kept and the error is the call's.
    let down = SchemaRegistry::<F::R>::from_properties([
        ("url", "http://127.0.0.1:1"),
        ("max.retries", "1"),
        ("retries.wait.ms", "5"),
    ])
    .unwrap();
    let consumer =
        Consumer::<F::R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    consumer.assign([("avro", 0)]);
    consumer.seek("avro", 0, Seek::Beginning);
    let mut strings = consumer
        .typed(StringCodec, AvroDeserializer::<String>::new(down.clone()))
        .with_registry(down.clone());
    for _ in 0..2 {
        let err = F::typed_next(&mut strings, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, TypedError::Registry(RegistryError::Unreachable(_))),
            "{err}"
        );
    }
    F::wait(strings.consumer().close()).await;
    cluster.stop();
}

/// The typed handles as a `futures::Sink` and a `Stream` (async runtimes): 20,000
/// messages through a sink whose producer has 64 KiB of buffer, so it pushes back; once
/// `send_all` returns every one is delivered, and the stream reads them all back.
async fn typed_sink_and_stream<R: AsyncRuntime>() {
    use futures_util::{SinkExt, StreamExt};
    use kasio_shell::types::Message;
    let cluster = mock(1, "sink", 2);
    let bootstrap = cluster.bootstrap();
    let producer = Producer::<R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("buffer.memory", "65536"),
    ])
    .unwrap();
    let mut sink = producer
        .clone()
        .typed(StringCodec, Json::<Order>::new())
        .into_sink("sink");
    let mut messages = futures_util::stream::iter(
        (0..20_000u64).map(|id| Ok(Message::new(format!("k{id}"), Order { id }))),
    );
    sink.send_all(&mut messages).await.unwrap();
    assert_eq!(
        producer.outstanding(),
        0,
        "flushed: every message delivered"
    );
    let consumer =
        Consumer::<R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    consumer.assign([("sink", 0), ("sink", 1)]);
    consumer.seek("sink", 0, Seek::Beginning);
    consumer.seek("sink", 1, Seek::Beginning);
    let mut typed = consumer.typed(StringCodec, Json::<Order>::new());
    let mut seen = vec![false; 20_000];
    let mut ends = HashSet::new();
    {
        let mut stream = typed.stream();
        while ends.len() < 2 {
            match stream.next().await.unwrap().unwrap() {
                Typed::Record(r) => {
                    let id = r.value.unwrap().id;
                    assert_eq!(r.key.unwrap(), format!("k{id}"));
                    assert!(
                        !std::mem::replace(&mut seen[id as usize], true),
                        "{id} twice"
                    );
                }
                Typed::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                    ends.insert(partition);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(seen.iter().all(|&s| s), "every message read back");
    typed.consumer().close().await;
    producer.close().await;
    cluster.stop();
}

#[test]
fn typed_sink_and_stream_on_tokio() {
    OnTokio::block_on(typed_sink_and_stream::<kasio_tokio::Tokio>());
}

#[test]
fn typed_sink_and_stream_on_smol() {
    OnSmol::block_on(typed_sink_and_stream::<kasio_smol::Smol>());
}

/// A pipeline from one topic to another (async runtimes): 5,000 orders in, the even ones
/// out with their id times ten; every output is delivered and every input offset
/// committed, so the group's next member finds nothing left to read.
async fn pipeline_copies_and_commits<R: AsyncRuntime>() {
    use kasio_shell::types::Message;
    let cluster = mock(1, "in", 2);
    cluster
        .with(|c| c.create_topic("out", 1).map(|_| ()))
        .unwrap()
        .unwrap();
    let bootstrap = cluster.bootstrap();
    let producer =
        Producer::<R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    let mut orders = producer.clone().typed(StringCodec, Json::<Order>::new());
    for id in 0..5_000u64 {
        let key = format!("k{id}");
        drop(
            orders
                .send(Record::new("in"), Some(key.as_str()), Some(&Order { id }))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    let group = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "copier"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    let consumer = Consumer::<R>::from_properties(group).unwrap();
    consumer.assign([("in", 0), ("in", 1)]);
    let stats = consumer
        .typed(StringCodec, Json::<Order>::new())
        .source()
        .filter(|r| r.value.as_ref().is_some_and(|o| o.id % 2 == 0))
        .map(|r| {
            Message::new(
                r.key.unwrap(),
                Order {
                    id: r.value.unwrap().id * 10,
                },
            )
        })
        .limit(5_000)
        .to_kafka(
            producer.clone().typed(StringCodec, Json::<Order>::new()),
            "out",
        )
        .await
        .unwrap();
    assert_eq!((stats.read, stats.written), (5_000, 2_500), "{stats:?}");
    assert!(stats.commits >= 1);
    // The group's committed offsets cover every input: a new member reads nothing.
    let next = Consumer::<R>::from_properties(group).unwrap();
    next.assign([("in", 0), ("in", 1)]);
    let mut ends = HashSet::new();
    while ends.len() < 2 {
        match next.next().await {
            Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                ends.insert(partition);
            }
            other => panic!("nothing should be left: {other:?}"),
        }
    }
    next.close().await;
    // The outputs, each once.
    let out = Consumer::<R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    out.assign([("out", 0)]);
    out.seek("out", 0, Seek::Beginning);
    let mut typed = out.typed(StringCodec, Json::<Order>::new());
    let mut ids = Vec::new();
    loop {
        match typed.next().await.unwrap() {
            Typed::Record(r) => ids.push(r.value.unwrap().id),
            Typed::Event(ConsumerEvent::EndOfPartition { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..5_000u64)
            .filter(|i| i % 2 == 0)
            .map(|i| i * 10)
            .collect::<Vec<_>>()
    );
    typed.consumer().close().await;
    producer.close().await;
    cluster.stop();
}

#[test]
fn pipeline_copies_and_commits_on_tokio() {
    OnTokio::block_on(pipeline_copies_and_commits::<kasio_tokio::Tokio>());
}

#[test]
fn pipeline_copies_and_commits_on_smol() {
    OnSmol::block_on(pipeline_copies_and_commits::<kasio_smol::Smol>());
}

/// The same pipeline exactly once: a group member reading read_committed and a
/// transactional producer, outputs and input offsets committed together.
async fn pipeline_copies_exactly_once<R: AsyncRuntime>() {
    use kasio_shell::types::Message;
    let cluster = mock(1, "in", 2);
    cluster
        .with(|c| c.create_topic("out", 1).map(|_| ()))
        .unwrap()
        .unwrap();
    let bootstrap = cluster.bootstrap();
    let producer =
        Producer::<R>::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    let mut orders = producer.clone().typed(StringCodec, Json::<Order>::new());
    for id in 0..2_000u64 {
        let key = format!("k{id}");
        drop(
            orders
                .send(Record::new("in"), Some(key.as_str()), Some(&Order { id }))
                .await
                .unwrap(),
        );
    }
    producer.close().await;
    let group = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "eos-copier"),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    let consumer = Consumer::<R>::from_properties(group).unwrap();
    consumer.subscribe(&["in"]).unwrap();
    let copier = Producer::<R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", "eos-copier"),
    ])
    .unwrap();
    copier.init_transactions().await.unwrap();
    let stats = consumer
        .typed(StringCodec, Json::<Order>::new())
        .source()
        .filter(|r| r.value.as_ref().is_some_and(|o| o.id % 2 == 0))
        .map(|r| {
            Message::new(
                r.key.unwrap(),
                Order {
                    id: r.value.unwrap().id * 10,
                },
            )
        })
        .commit_interval(Duration::from_millis(50))
        .limit(2_000)
        .to_kafka_exactly_once(
            copier.clone().typed(StringCodec, Json::<Order>::new()),
            "out",
        )
        .await
        .unwrap();
    assert_eq!((stats.read, stats.written), (2_000, 1_000), "{stats:?}");
    assert!(stats.commits >= 1, "{stats:?}");
    let out = Consumer::<R>::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
    ])
    .unwrap();
    out.assign([("out", 0)]);
    out.seek("out", 0, Seek::Beginning);
    let mut typed = out.typed(StringCodec, Json::<Order>::new());
    let mut ids = Vec::new();
    loop {
        match typed.next().await.unwrap() {
            Typed::Record(r) => ids.push(r.value.unwrap().id),
            Typed::Event(ConsumerEvent::EndOfPartition { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..2_000u64)
            .filter(|i| i % 2 == 0)
            .map(|i| i * 10)
            .collect::<Vec<_>>()
    );
    typed.consumer().close().await;
    copier.close().await;
    cluster.stop();
}

#[test]
fn pipeline_copies_exactly_once_on_tokio() {
    OnTokio::block_on(pipeline_copies_exactly_once::<kasio_tokio::Tokio>());
}

#[test]
fn pipeline_copies_exactly_once_on_smol() {
    OnSmol::block_on(pipeline_copies_exactly_once::<kasio_smol::Smol>());
}

/// The registry client against the lab's real registry (Apicurio Registry's
/// Confluent-compatible API): registration, lookups, evolution under BACKWARD, a refused
/// incompatible change, errors with the registry's codes, and one request for many
/// concurrent misses of one id.
async fn registry_lab<F: Flavor>() {
    let url = std::env::var("KASIO_REGISTRY_URL")
        .expect("KASIO_REGISTRY_URL: start the registry with scripts/registry up");
    let registry = SchemaRegistry::<F::R>::from_properties([("url", url.as_str())]).unwrap();
    let subject = format!("orders-{}-{}-value", F::NAME, std::process::id());
    let v1 =
        Schema::avro(r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#);
    let v2 = Schema::avro(
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}"#,
    );
    let breaking = Schema::avro(
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#,
    );
    let level = F::registry(registry.set_compatibility(Some(&subject), Compatibility::Backward));
    assert_eq!(level.await.unwrap(), Compatibility::Backward);
    let id1 = F::registry(registry.register(&subject, v1.clone()))
        .await
        .unwrap();
    let sent = registry.requests_sent();
    assert_eq!(
        F::registry(registry.register(&subject, v1.clone()))
            .await
            .unwrap(),
        id1
    );
    assert_eq!(registry.requests_sent(), sent, "the id is cached");
    let found = F::registry(registry.lookup(&subject, v1.clone()))
        .await
        .unwrap();
    assert_eq!((found.id, found.version), (id1, 1));
    let id2 = F::registry(registry.register(&subject, v2.clone()))
        .await
        .unwrap();
    assert_ne!(id1, id2);
    let latest = F::registry(registry.version(&subject, Version::Latest))
        .await
        .unwrap();
    assert_eq!((latest.id, latest.version), (id2, 2));
    assert_eq!(
        F::registry(registry.versions(&subject)).await.unwrap(),
        [1, 2]
    );
    let check = F::registry(registry.test_compatibility(&subject, breaking.clone()));
    assert!(!check.await.unwrap().is_compatible);
    let refused = F::registry(registry.register(&subject, breaking))
        .await
        .unwrap_err();
    assert!(refused.is_incompatible(), "{refused}");
    let missing = F::registry(registry.schema_by_id(2_000_000_000))
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let subjects = F::registry(registry.subjects()).await.unwrap();
    assert!(subjects.contains(&subject));

    // A fresh client (an empty cache), 32 callers for one id at once: one request.
    let fresh = SchemaRegistry::<F::R>::from_properties([("url", url.as_str())]).unwrap();
    let calls: Vec<_> = (0..32).map(|_| fresh.schema_by_id(id2)).collect();
    for call in calls {
        let schema = F::registry(call).await.unwrap();
        assert!(schema.text.contains("note"), "{}", schema.text);
    }
    assert_eq!(fresh.requests_sent(), 1);

    let deleted = F::registry(registry.delete_subject(&subject, false))
        .await
        .unwrap();
    assert_eq!(deleted, [1, 2]);
    F::wait(registry.close()).await;
    F::wait(fresh.close()).await;
}

macro_rules! suite {
    ($runtime:ident, $flavor:ty) => {
        mod $runtime {
            use super::*;

            #[test]
            fn produces_through_faults_exactly_once_in_order() {
                <$flavor as Flavor>::block_on(
                    super::produces_through_faults_exactly_once_in_order::<$flavor>(),
                );
            }

            #[test]
            fn survives_a_broker_stopping_and_starting() {
                <$flavor as Flavor>::block_on(super::survives_a_broker_stopping_and_starting::<
                    $flavor,
                >());
            }

            #[test]
            fn an_unreachable_bootstrap_fails_sends_after_max_block() {
                <$flavor as Flavor>::block_on(
                    super::an_unreachable_bootstrap_fails_sends_after_max_block::<$flavor>(),
                );
            }

            #[test]
            fn consumes_what_was_produced_through_dropped_connections() {
                <$flavor as Flavor>::block_on(
                    super::consumes_what_was_produced_through_dropped_connections::<$flavor>(),
                );
            }

            #[test]
            fn consumes_in_a_group_and_commits() {
                <$flavor as Flavor>::block_on(super::consumes_in_a_group_and_commits::<$flavor>());
            }

            #[test]
            fn close_leaves_the_group_after_committing() {
                <$flavor as Flavor>::block_on(super::close_leaves_the_group_after_committing::<
                    $flavor,
                >());
            }

            #[test]
            fn commits_resolve_with_or_without_partitions() {
                <$flavor as Flavor>::block_on(super::commits_resolve_with_or_without_partitions::<
                    $flavor,
                >());
            }

            #[test]
            fn dropped_handles_deliver_and_leave() {
                <$flavor as Flavor>::block_on(super::dropped_handles_deliver_and_leave_the_mock::<
                    $flavor,
                >());
            }

            #[test]
            #[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
            fn lab_dropped_handles() {
                <$flavor as Flavor>::block_on(super::lab_dropped_handles::<$flavor>());
            }

            #[test]
            fn transactions_are_all_or_nothing() {
                <$flavor as Flavor>::block_on(super::transactions_are_all_or_nothing::<$flavor>());
            }

            #[test]
            fn copies_exactly_once_with_a_session() {
                <$flavor as Flavor>::block_on(
                    super::copies_exactly_once_with_a_session::<$flavor>(),
                );
            }

            #[test]
            fn admin_calls_survive_dropped_connections() {
                <$flavor as Flavor>::block_on(super::admin_calls_survive_dropped_connections::<
                    $flavor,
                >());
            }

            #[test]
            fn registry_calls_retry_through_a_flaky_server() {
                <$flavor as Flavor>::block_on(
                    super::registry_calls_retry_through_a_flaky_server::<$flavor>(),
                );
            }

            #[test]
            fn typed_records_under_each_bad_record_policy() {
                <$flavor as Flavor>::block_on(
                    super::typed_records_under_each_bad_record_policy::<$flavor>(),
                );
            }

            #[test]
            fn typed_consumer_fetches_schemas_through_a_flaky_registry() {
                <$flavor as Flavor>::block_on(
                    super::typed_consumer_fetches_schemas_through_a_flaky_registry::<$flavor>(),
                );
            }

            #[test]
            #[ignore = "needs the lab's registry: scripts/registry up, then eval \"$(scripts/registry env)\""]
            fn registry_lab() {
                <$flavor as Flavor>::block_on(super::registry_lab::<$flavor>());
            }

            #[test]
            #[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
            fn lab_plaintext() {
                <$flavor as Flavor>::block_on(super::lab_plaintext::<$flavor>());
            }

            #[test]
            #[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
            fn lab_group() {
                <$flavor as Flavor>::block_on(super::lab_group::<$flavor>());
            }

            #[test]
            #[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
            fn lab_every_listener_and_mechanism() {
                <$flavor as Flavor>::block_on(super::lab_every_listener_and_mechanism::<$flavor>());
            }
        }
    };
}

suite!(tokio_rt, Tokio);
suite!(smol_rt, Smol);
suite!(async_std_rt, AsyncStd);
suite!(blocking, Blocking);

/// A transaction left open past `transaction.timeout.ms` on the real broker, whose
/// coordinator aborts it and moves the producer to a new epoch. The client's part is the
/// core's, so one runtime shows it; scripts/test runs it on both transaction protocols.
async fn lab_transaction_timeout_on<F: Flavor>() {
    let props = lab("PLAINTEXT", None);
    let topic = format!("suite-txn-timeout-{}", std::process::id());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let created = F::call(admin.create_topics(&[NewTopic::new(&topic, 1, 1)], false))
        .await
        .unwrap();
    assert!(created[0].error.is_none(), "{created:?}");
    let mut txn_props = props.clone();
    txn_props.push(("transactional.id".into(), topic.clone()));
    txn_props.push(("transaction.timeout.ms".into(), "1000".into()));
    let producer = Producer::<F::R>::from_properties(borrowed(&txn_props)).unwrap();
    F::wait(producer.init_transactions()).await.unwrap();
    let protocol = producer.transaction_protocol().unwrap();
    let send = |v: &'static str| {
        let producer = &producer;
        let topic = &topic;
        async move {
            let d = F::send(producer, Record::new(topic).value(v.as_bytes()))
                .await
                .unwrap();
            F::wait(d).await
        }
    };
    producer.begin_transaction().unwrap();
    send("1").await.unwrap();
    // The lab's coordinator looks for timed-out transactions every second.
    kasio_tokio::Tokio::sleep_until(Instant::now() + Duration::from_secs(4)).await;
    let after = send("2").await;
    assert!(
        matches!(
            after,
            Err(ProduceError::Broker {
                code: ErrorCode::InvalidProducerEpoch,
                ..
            })
        ),
        "{after:?}"
    );
    let commit = F::wait(producer.commit_transaction()).await;
    assert!(
        matches!(commit, Err(kasio_shell::TxnError::Abortable { .. })),
        "{commit:?}"
    );
    let abort = F::wait(producer.abort_transaction()).await;
    if protocol == 1 {
        // The first protocol cannot tell the old epoch from a fenced one.
        let Err(kasio_shell::TxnError::Fatal { code, message }) = abort else {
            panic!("{abort:?}");
        };
        assert_eq!(code, ErrorCode::ProducerFenced);
        assert!(message.contains("transaction.timeout.ms"), "{message}");
    } else {
        // The second answers the abort with the new epoch, and the producer goes on.
        abort.unwrap();
        producer.begin_transaction().unwrap();
        send("3").await.unwrap();
        F::wait(producer.commit_transaction()).await.unwrap();
        let mut consumer_props = props.clone();
        consumer_props.push(("isolation.level".into(), "read_committed".into()));
        // The coordinator writes the commit markers after it has answered EndTxn: until
        // they are in, the partition's stable end is before the record, so a reader that
        // comes too early finds nothing yet and reads again.
        let mut got = Vec::new();
        for _ in 0..50 {
            let consumer = Consumer::<F::R>::from_properties(borrowed(&consumer_props)).unwrap();
            consumer.assign([(&topic, 0)]);
            consumer.seek(&topic, 0, Seek::Beginning);
            got = read_to_end::<F>(&consumer, 1, |_| {}).await;
            F::wait(consumer.close()).await;
            if got != vec![Vec::<u64>::new()] {
                break;
            }
            kasio_tokio::Tokio::sleep_until(Instant::now() + Duration::from_millis(100)).await;
        }
        assert_eq!(got, vec![vec![3]]);
    }
    F::wait(producer.close()).await;
    let _ = F::call(admin.delete_topics(&[TopicRef::Name(topic)])).await;
    F::wait(admin.close()).await;
}

#[test]
#[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
fn lab_transaction_timeout() {
    Tokio::block_on(lab_transaction_timeout_on::<Tokio>());
}

/// A pattern subscription on the real broker, on both group protocols (and matched by the
/// coordinator with `consumer-broker`, KIP-848's regex): the matching topics are read, a
/// matching topic created later joins, others never do.
async fn lab_pattern_subscription_on<F: Flavor>(protocol: &str) {
    let props = lab("PLAINTEXT", None);
    let stem = format!("suite-pattern-{protocol}-{}", std::process::id());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let create = |name: String| {
        let admin = &admin;
        async move {
            let created = F::call(admin.create_topics(&[NewTopic::new(&name, 2, 1)], false))
                .await
                .unwrap();
            assert!(created[0].error.is_none(), "{created:?}");
        }
    };
    let (a, b, other, later) = (
        format!("{stem}-a"),
        format!("{stem}-b"),
        format!("other-{stem}"),
        format!("{stem}-later"),
    );
    for t in [&a, &b, &other] {
        create(t.clone()).await;
    }
    let producer = Producer::<F::R>::from_properties(borrowed(&props)).unwrap();
    let write = |topics: Vec<String>, from: u64| {
        let producer = &producer;
        async move {
            for (i, t) in topics.iter().enumerate() {
                let v = (from + i as u64).to_string();
                let d = F::send(producer, Record::new(t).value(v.as_bytes()))
                    .await
                    .unwrap();
                F::wait(d).await.unwrap();
            }
        }
    };
    write(vec![a.clone(), b.clone(), other.clone()], 0).await;
    let mut consumer_props = props.clone();
    for (k, v) in [
        ("group.id", stem.as_str()),
        ("group.protocol", protocol.trim_end_matches("-broker")),
        ("auto.offset.reset", "earliest"),
        ("metadata.max.age.ms", "1000"),
    ] {
        consumer_props.push((k.into(), v.into()));
    }
    let consumer = Consumer::<F::R>::from_properties(borrowed(&consumer_props)).unwrap();
    let pattern = format!("{}-.*", regex_escape(&stem));
    if protocol.ends_with("-broker") {
        consumer.subscribe_broker_pattern(&pattern).unwrap();
    } else {
        consumer.subscribe_pattern(&pattern).unwrap();
    }
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut created = false;
    while got.len() < 3 {
        assert!(Instant::now() < deadline, "read only {got:?}");
        if let Some(Fetched::Batch(b)) = F::poll(&consumer, Duration::from_millis(500)).await {
            b.for_each(|r| {
                got.insert((
                    b.topic.to_string(),
                    std::str::from_utf8(r.value.unwrap()).unwrap().to_string(),
                ));
            })
            .unwrap();
        }
        if got.len() == 2 && !created {
            created = true;
            create(later.clone()).await;
            write(vec![later.clone(), other.clone()], 10).await;
        }
    }
    consumer.unsubscribe();
    F::wait(consumer.close()).await;
    let topics: BTreeSet<String> = got.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        topics,
        [a.clone(), b.clone(), later.clone()].into_iter().collect()
    );
    F::wait(producer.close()).await;
    let refs: Vec<TopicRef> = [a, b, other, later]
        .into_iter()
        .map(TopicRef::Name)
        .collect();
    let _ = F::call(admin.delete_topics(&refs)).await;
    F::wait(admin.close()).await;
}

/// The topic names the suite makes hold `-` and alphanumerics only; dots are escaped.
fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

#[test]
#[ignore = "needs the Kafka lab: scripts/kafka up, then eval \"$(scripts/kafka env)\""]
fn lab_pattern_subscription() {
    for protocol in ["classic", "consumer", "consumer-broker"] {
        Tokio::block_on(lab_pattern_subscription_on::<Tokio>(protocol));
    }
}

/// Follower fetching on the three-node lab (each node its own rack, leaders choosing
/// replicas by rack): a consumer on `rack-2` reads every partition of a topic replicated
/// three times from node 2, whichever node leads it, and reads every record.
async fn cluster_follower_fetching_on<F: Flavor>() {
    const PARTS: i32 = 6;
    const N: u64 = 6000;
    let props = lab("PLAINTEXT", None);
    let topic = format!("suite-rack-{}", std::process::id());
    let admin = kasio_shell::Admin::<F::R>::from_properties(borrowed(&props)).unwrap();
    let created = F::call(admin.create_topics(&[NewTopic::new(&topic, PARTS, 3)], false))
        .await
        .unwrap();
    assert!(created[0].error.is_none(), "{created:?}");
    let producer = Producer::<F::R>::from_properties(borrowed(&props)).unwrap();
    let mut pending = Vec::new();
    for i in 0..N {
        let v = i.to_string();
        let record = Record::new(&topic).key(v.as_bytes()).value(v.as_bytes());
        pending.push(F::send(&producer, record).await.unwrap());
    }
    for d in pending {
        F::wait(d).await.unwrap();
    }
    let mut consumer_props = props.clone();
    consumer_props.push(("client.rack".into(), "rack-2".into()));
    let consumer = Consumer::<F::R>::from_properties(borrowed(&consumer_props)).unwrap();
    let parts: Vec<(&str, i32)> = (0..PARTS).map(|p| (topic.as_str(), p)).collect();
    consumer.assign(&parts);
    for p in 0..PARTS {
        consumer.seek(&topic, p, Seek::Beginning);
    }
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < N as usize {
        assert!(Instant::now() < deadline, "read {} of {N}", got.len());
        if let Some(Fetched::Batch(b)) = F::poll(&consumer, Duration::from_millis(500)).await {
            b.for_each(|r| {
                got.insert(std::str::from_utf8(r.value.unwrap()).unwrap().to_string());
            })
            .unwrap();
        }
    }
    let from: Vec<Option<i32>> = (0..PARTS)
        .map(|p| consumer.fetching_from(&topic, p))
        .collect();
    assert_eq!(from, vec![Some(2); PARTS as usize], "node 2 serves rack-2");
    F::wait(consumer.close()).await;
    F::wait(producer.close()).await;
    let _ = F::call(admin.delete_topics(&[TopicRef::Name(topic)])).await;
}

#[test]
#[ignore = "needs the three-node Kafka lab: scripts/kafka cluster, then eval \"$(scripts/kafka env)\""]
fn cluster_follower_fetching() {
    Tokio::block_on(cluster_follower_fetching_on::<Tokio>());
}
