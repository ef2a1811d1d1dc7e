//! The admin client in one tour: the cluster, a topic created, grown and reconfigured,
//! records written and trimmed, a group's offsets committed, reset and measured as lag.
//! With no `KASIO_BOOTSTRAP` it runs on the embedded kasio-mock cluster.
//!
//! `cargo run -p kasio --features blocking,mock --example blocking_admin_demo`

use kasio::{
    ConfigChange, ConfigResource, ConfigSource, IsolationLevel, NewTopic, OffsetSpec, Record,
    TopicPartition, TopicPartitionOffset, TopicRef,
    blocking::{Admin, Producer},
    mock::{ClusterConfig, MockCluster},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, _mock) = match std::env::var("KASIO_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let cluster = MockCluster::start(ClusterConfig {
                brokers: 3,
                ..Default::default()
            })?;
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let admin = Admin::from_properties([("bootstrap.servers", bootstrap.as_str())])?;

    let cluster = admin.describe_cluster().wait()?;
    println!(
        "cluster {}: {} broker(s), controller {:?}",
        cluster.cluster_id,
        cluster.brokers.len(),
        cluster.controller
    );

    let topic = format!("admin-demo-{}", std::process::id());
    for r in admin
        .create_topics(
            &[NewTopic::new(&topic, 3, 1).config("retention.ms", "86400000")],
            false,
        )
        .wait()?
    {
        println!(
            "created {}: {}",
            r.name,
            r.error.map_or("ok".into(), |e| e.to_string())
        );
    }
    admin.create_partitions(&[(&topic, 4)], false).wait()?;
    for d in admin.describe_topics(&[&topic]).wait()? {
        let t = d.result?;
        for p in &t.partitions {
            println!(
                "  partition {} leader {:?} replicas {:?}",
                p.partition, p.leader, p.replicas
            );
        }
    }

    let change = (
        ConfigResource::topic(&topic),
        vec![ConfigChange::Set("retention.ms".into(), "3600000".into())],
    );
    admin.alter_configs(&[change], false).wait()?;
    // A change reaches the broker's view through its metadata log a moment after the
    // answer: describe until it shows (or 5 s pass).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut own = Vec::new();
        for rc in admin
            .describe_configs(&[ConfigResource::topic(&topic)])
            .wait()?
        {
            // The topic's own settings; the rest are the broker's defaults.
            own.extend(
                rc.result?
                    .into_iter()
                    .filter(|c| c.source == ConfigSource::Topic),
            );
        }
        let applied = own
            .iter()
            .any(|c| c.name == "retention.ms" && c.value.as_deref() == Some("3600000"));
        if applied || std::time::Instant::now() >= deadline {
            for c in &own {
                println!("  config {} = {:?}", c.name, c.value);
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    for i in 0..1000u32 {
        let key = format!("key-{}", i % 10);
        // Queued; `flush` below waits for every delivery.
        drop(producer.send(Record::new(&topic).key(key.as_bytes()).value(b"value"))?);
    }
    producer.flush();
    producer.close();

    let specs: Vec<(TopicPartition, OffsetSpec)> = (0..4)
        .map(|p| (TopicPartition::new(topic.as_str(), p), OffsetSpec::Latest))
        .collect();
    let ends = admin
        .list_offsets(specs, IsolationLevel::ReadUncommitted)
        .wait()?;
    let mut end = Vec::new();
    for r in &ends {
        let o = r.result.clone()?.offset;
        println!("  {}:{} ends at {o}", r.topic, r.partition);
        end.push(TopicPartitionOffset::new(r.topic.as_str(), r.partition, o));
    }
    admin
        .delete_records([TopicPartition::new(topic.as_str(), 0).at(1)])
        .wait()?;

    let group = format!("{topic}-group");
    let half: Vec<TopicPartitionOffset> = end
        .iter()
        .map(|o| o.topic_partition().at(o.offset / 2))
        .collect();
    admin.alter_group_offsets(&group, &half).wait()?;
    for l in admin.group_lag(&group).wait()? {
        println!(
            "  group {group} {}:{} committed {} end {} lag {}",
            l.topic, l.partition, l.committed, l.end, l.lag
        );
    }
    admin
        .reset_group_offsets(&group, Vec::<TopicPartition>::new(), OffsetSpec::Latest)
        .wait()?;
    let lag: i64 = admin.group_lag(&group).wait()?.iter().map(|l| l.lag).sum();
    println!("after reset to latest, total lag {lag}");

    admin.delete_groups(&[&group]).wait()?;
    admin
        .delete_topics(&[TopicRef::Name(topic.clone())])
        .wait()?;
    println!("deleted {topic} and {group}");
    admin.close();
    Ok(())
}
