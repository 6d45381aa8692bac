//! `topiclog consume --isolation-level`, Kafka's console-consumer flag: `read_committed` prints
//! only committed transactional records; `read_uncommitted` (the default) prints every data
//! record; neither prints a transaction marker.
#![cfg(feature = "cli")]

use topiclog::{ProducerConfig, ProducerRecord};

mod common;
use common::{TestResult, open, run_cli};

#[test]
fn consume_prints_what_the_isolation_level_allows() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", 1)?;
        let p = log.producer(ProducerConfig::transactional("cli"))?;
        p.init_transactions()?;
        p.begin_transaction()?;
        p.send(ProducerRecord::new("t", "kept"))?;
        p.commit_transaction()?;
        p.begin_transaction()?;
        p.send(ProducerRecord::new("t", "dropped"))?;
        p.abort_transaction()?;
        p.begin_transaction()?;
        p.send(ProducerRecord::new("t", "open"))?;
        drop(p);
        log.close()?;
    }
    let run = |level: Option<&str>| -> TestResult<String> {
        let mut args = vec!["consume", "t", "--from-beginning", "--timeout-ms", "300"];
        if let Some(l) = level {
            args.extend(["--isolation-level", l]);
        }
        let out = run_cli(dir.path(), &args, b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    assert_eq!(run(Some("read_committed"))?, "kept\n");
    // The open transaction (its producer gone, the log closed without ending it) is data
    // too: a read-only open completes nothing, so read_committed stops before it.
    assert_eq!(run(None)?, "kept\ndropped\nopen\n");
    assert_eq!(run(Some("read_uncommitted"))?, "kept\ndropped\nopen\n");
    let bad = run_cli(
        dir.path(),
        &["consume", "t", "--isolation-level", "serializable"],
        b"",
    );
    assert!(!bad.status.success());
    Ok(())
}
