//! `make demo` as a test: the demo flow (real docker-registry, real `verdict serve`, Gatekeeper's
//! request over HTTPS) admits the Notation-signed image and denies the unsigned one.

#[tokio::test]
async fn demo_allows_the_signed_image_and_denies_the_unsigned_one() {
    let mut transcript = Vec::new();
    let outcome = verdict_testkit::demo::run(
        std::path::Path::new(env!("CARGO_BIN_EXE_verdict")),
        |line| transcript.push(line.to_string()),
    )
    .await
    .expect("demo run");
    let transcript = transcript.join("\n");

    assert!(
        outcome.succeeded(),
        "{:?}\n{transcript}",
        outcome.problems()
    );
    assert!(outcome.signed.allowed);
    assert!(
        outcome.signed.reason.contains("verifier-notation")
            && outcome
                .signed
                .reason
                .contains("CN=demo,O=Verdict Demo,ST=WA,C=US"),
        "{}",
        outcome.signed.reason
    );
    assert_eq!(outcome.signed.item["value"]["isSuccess"], true);

    assert!(!outcome.unsigned.allowed);
    assert!(!outcome.unsigned.system_error);
    assert!(
        outcome.unsigned.reason.contains("NO_VERIFIER_REPORT"),
        "{}",
        outcome.unsigned.reason
    );
    assert!(
        transcript.contains("verdict verified both images on push")
            && transcript.contains("# 0 inline verification(s) at admission")
            && transcript.contains("pod/demo-signed created")
            && transcript.contains("Error from server (Forbidden)")
            && transcript.contains("Subject failed verification"),
        "{transcript}"
    );
}
