//! Produce, ListOffsets and Fetch against a live broker.

mod common;

use bytes::Bytes;
use strata_client::{
    Acks, Admin, Compression, Consumer, ConsumerConfig, NewTopic, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

async fn create(config: &strata_client::ClientConfig, prefix: &str, partitions: i32) -> String {
    let name = common::unique_topic(prefix);
    let mut admin = Admin::connect(config.clone()).await.unwrap();
    admin
        .create_topic(
            &NewTopic {
                name: name.clone(),
                partitions,
                replication_factor: 1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    name
}

/// Polls until `count` records arrived (a broker may return fewer per Fetch).
async fn poll_n(consumer: &mut Consumer, count: usize) -> Vec<strata_client::ConsumerRecord> {
    let mut records = Vec::new();
    for _ in 0..200 {
        if records.len() >= count {
            break;
        }
        records.extend(consumer.poll().await.unwrap());
    }
    assert_eq!(records.len(), count, "records that arrived");
    records
}

#[tokio::test]
async fn every_codec_and_acks_level_round_trips() {
    let Some(config) = common::bootstrap() else {
        return;
    };
    let topic = create(&config, "codecs", 1).await;
    let codecs = [
        (Compression::None, Acks::All),
        (Compression::Gzip, Acks::Leader),
        (Compression::Snappy, Acks::All),
        (Compression::Lz4, Acks::Leader),
        (Compression::Zstd, Acks::All),
    ];
    let per_codec = 50;
    for (round, (compression, acks)) in codecs.iter().enumerate() {
        let producer_config = ProducerConfig {
            compression: *compression,
            acks: *acks,
            ..ProducerConfig::default()
        };
        let mut producer = Producer::connect(config.clone(), producer_config)
            .await
            .unwrap();
        for i in 0..per_codec {
            let mut record = ProducerRecord::new(topic.clone(), format!("{compression:?}-{i}"))
                .with_key(format!("k{i}"));
            record.headers = vec![("round".to_owned(), Some(Bytes::from(round.to_string())))];
            record.timestamp_ms = Some(1_600_000_000_000 + i as i64);
            producer.send(record).await.unwrap();
        }
        let acked = producer.flush().await.unwrap();
        assert_eq!(
            acked.iter().map(|a| a.record_count).sum::<usize>(),
            per_codec
        );
        assert_eq!(
            acked[0].base_offset,
            (round * per_codec) as i64,
            "{compression:?}"
        );
    }

    let mut consumer = Consumer::connect(config.clone(), ConsumerConfig::default())
        .await
        .unwrap();
    let tp = TopicPartition::new(topic.clone(), 0);
    consumer.assign([tp.clone()]);
    consumer.seek(&tp, OffsetSpec::Offset(0)).unwrap();
    let records = poll_n(&mut consumer, codecs.len() * per_codec).await;
    for (n, record) in records.iter().enumerate() {
        let (round, i) = (n / per_codec, n % per_codec);
        assert_eq!(record.offset, n as i64);
        assert_eq!(record.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(
            record.value.as_deref(),
            Some(format!("{:?}-{i}", codecs[round].0).as_bytes())
        );
        assert_eq!(record.timestamp_ms, 1_600_000_000_000 + i as i64);
        assert_eq!(
            record.headers,
            vec![("round".to_owned(), Some(Bytes::from(round.to_string())))]
        );
    }
    assert_eq!(
        consumer.position(&tp),
        Some((codecs.len() * per_codec) as i64)
    );
}

#[tokio::test]
async fn seeking_mid_batch_and_past_the_end() {
    let Some(config) = common::bootstrap() else {
        return;
    };
    let topic = create(&config, "seek", 1).await;
    let mut producer = Producer::connect(config.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..20 {
        producer
            .send(ProducerRecord::new(topic.clone(), format!("v{i}")))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();

    let tp = TopicPartition::new(topic.clone(), 0);
    let mut consumer = Consumer::connect(config.clone(), ConsumerConfig::default())
        .await
        .unwrap();
    consumer.assign([tp.clone()]);

    // Offset 7 is inside the one 20-record batch: the first seven are skipped.
    consumer.seek(&tp, OffsetSpec::Offset(7)).unwrap();
    let records = poll_n(&mut consumer, 13).await;
    assert_eq!(records[0].offset, 7);
    assert_eq!(records[0].value.as_deref(), Some(&b"v7"[..]));

    let latest = consumer
        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(latest[&tp], 20);
    let earliest = consumer
        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(earliest[&tp], 0);

    // Past the end: OFFSET_OUT_OF_RANGE resets to earliest (auto.offset.reset).
    consumer.seek(&tp, OffsetSpec::Offset(1_000)).unwrap();
    let records = poll_n(&mut consumer, 20).await;
    assert_eq!(records[0].offset, 0);

    // From latest, only new records arrive.
    consumer.seek(&tp, OffsetSpec::Latest).unwrap();
    assert!(consumer.poll().await.unwrap().is_empty());
    producer
        .send(ProducerRecord::new(topic.clone(), "new"))
        .await
        .unwrap();
    producer.flush().await.unwrap();
    let records = poll_n(&mut consumer, 1).await;
    assert_eq!(records[0].offset, 20);
    assert_eq!(records[0].value.as_deref(), Some(&b"new"[..]));
}

#[tokio::test]
async fn keyed_records_follow_murmur2_and_acks_zero_is_fire_and_forget() {
    let Some(config) = common::bootstrap() else {
        return;
    };
    let topic = create(&config, "keys", 4).await;

    // With acks=0 nothing reports a partition whose leader is not ready yet, so wait
    // until the new topic's partitions answer ListOffsets before sending.
    let mut consumer = Consumer::connect(config.clone(), ConsumerConfig::default())
        .await
        .unwrap();
    let partitions: Vec<TopicPartition> = (0..4)
        .map(|p| TopicPartition::new(topic.clone(), p))
        .collect();
    consumer.assign(partitions.clone());
    for tp in &partitions {
        consumer.seek(tp, OffsetSpec::Earliest).unwrap();
    }
    common::wait::eventually_async("every new partition to answer ListOffsets", async || {
        let positions: Vec<Option<i64>> =
            partitions.iter().map(|tp| consumer.position(tp)).collect();
        if positions.iter().all(Option::is_some) {
            return Ok(());
        }
        assert!(consumer.poll().await.unwrap().is_empty());
        Err(format!("positions {positions:?}"))
    })
    .await;
    assert!(partitions.iter().all(|tp| consumer.position(tp) == Some(0)));

    let producer_config = ProducerConfig {
        acks: Acks::None,
        ..ProducerConfig::default()
    };
    let mut producer = Producer::connect(config.clone(), producer_config)
        .await
        .unwrap();
    for i in 0..200 {
        let record =
            ProducerRecord::new(topic.clone(), format!("v{i}")).with_key(format!("user-{i}"));
        producer.send(record).await.unwrap();
    }
    let acked = producer.flush().await.unwrap();
    assert!(
        acked.iter().all(|a| a.base_offset == -1),
        "acks=0 has no offsets"
    );

    let records = poll_n(&mut consumer, 200).await;
    for record in records {
        let key = record.key.unwrap();
        assert_eq!(
            record.partition,
            strata_client::partitioner::partition_for_key(&key, 4)
        );
    }
}
