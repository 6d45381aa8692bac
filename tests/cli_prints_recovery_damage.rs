//! Every read-write command of the `topiclog` binary says on stderr what recovery found when
//! the open met damage at rest, instead of going on silently.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;

#[test]
fn produce_after_damage_at_rest_prints_the_recovery_report() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(2048))?;
    {
        let p = log.partition("t", 0)?;
        for i in 0..200 {
            p.append(&[rec(i)])?;
        }
    }
    let dir = log.close()?;
    // Garble the header (magic byte) of the second segment's last batch.
    let logs = segment_logs(&dir.path().join("t-0"));
    let mut bytes = std::fs::read(&logs[1])?;
    let mut pos = 0;
    let mut last = 0;
    for b in topiclog::Batches::new(bytes.clone().into()) {
        last = pos;
        pos += b?.len();
    }
    bytes[last + 16] ^= 0x7f;
    std::fs::write(&logs[1], &bytes)?;

    let out = run_cli(dir.path(), &["produce", "t"], b"after\n");
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("topiclog: recovery: t-0: damage at rest in")
            && err.contains(&logs[1].display().to_string())
            && err.contains(".damaged"),
        "{err}"
    );
    // The record went in after the old end: nothing was handed out twice.
    let log = open(dir.path())?;
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 201);
    Ok(())
}
