//! Real nats-server with JetStream: dedupe by Nats-Msg-Id, durable pull consumer, restart.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use verdict_testkit::NatsServer;

#[tokio::test]
async fn jetstream_dedupes_consumes_and_survives_restart() {
    let mut nats = NatsServer::start().await.unwrap();
    assert!(nats.url().starts_with("nats://127.0.0.1:"));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js
        .create_stream(stream::Config {
            name: "SCANS".into(),
            subjects: vec!["scan.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();

    for expect_duplicate in [false, true] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "image-1");
        let ack = js
            .publish_with_headers("scan.image", headers, "payload-1".into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.duplicate, expect_duplicate);
    }
    assert_eq!(stream.info().await.unwrap().state.messages, 1);

    // A second message stays in the stream across the restart.
    js.publish("scan.image", "payload-2".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("worker".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let msg = batch.next().await.unwrap().unwrap();
    assert_eq!(&msg.payload[..], b"payload-1");
    msg.double_ack().await.unwrap();
    assert!(batch.next().await.is_none());

    let monitor = reqwest::get(format!("{}/healthz", nats.monitor_url()))
        .await
        .unwrap();
    assert_eq!(monitor.status(), 200);

    // Clean restart: the acked message stays gone, the pending one is delivered.
    nats.stop();
    nats.restart().await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream("SCANS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let consumer: jetstream::consumer::Consumer<pull::Config> =
        stream.get_consumer("worker").await.unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(5)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let msg = batch.next().await.unwrap().unwrap();
    assert_eq!(&msg.payload[..], b"payload-2");
    msg.double_ack().await.unwrap();
    assert!(batch.next().await.is_none());
    assert_eq!(stream.info().await.unwrap().state.messages, 0);

    // Crash (SIGKILL): the stream, the consumer and an unacked message survive on disk.
    js.publish("scan.image", "payload-3".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let log_before = nats.log_path().to_path_buf();
    nats.kill();
    assert!(async_nats::connect(nats.url()).await.is_err());
    nats.restart().await.unwrap();
    assert_eq!(nats.log_path(), log_before);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let stream = js.get_stream("SCANS").await.unwrap();
    let consumer: jetstream::consumer::Consumer<pull::Config> =
        stream.get_consumer("worker").await.unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(5)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut payloads = Vec::new();
    while let Some(msg) = batch.next().await {
        let msg = msg.unwrap();
        payloads.push(String::from_utf8(msg.payload.to_vec()).unwrap());
        msg.double_ack().await.unwrap();
    }
    // payload-2's ack may be lost in the crash (at-least-once); payload-3 must be there.
    assert!(payloads.contains(&"payload-3".to_string()), "{payloads:?}");
    assert!(!payloads.contains(&"payload-1".to_string()), "{payloads:?}");
}
