//! A file of the data directory replaced by a directory is reported as such, with its path,
//! not as an obscure OS error ("No such device" from mapping a directory).
#![allow(
    clippy::indexing_slicing,
    clippy::case_sensitive_file_extension_comparisons
)]

mod common;

use std::fs;

use common::{TestResult, open};
use topiclog::Record;

#[test]
fn a_directory_where_a_file_belongs_is_named() -> TestResult {
    for (name, clean) in [
        ("00000000000000000000.log", true),
        ("00000000000000000000.log", false),
        ("00000000000000000000.index", true),
        ("00000000000000000000.timeindex", false),
    ] {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        log.create_topic("t", 1)?;
        log.partition("t", 0)?.append(&[Record::new("v")])?;
        if clean {
            log.close()?;
        } else {
            log.abandon();
        }
        let path = dir.path().join("t-0").join(name);
        fs::remove_file(&path)?;
        fs::create_dir(&path)?;
        let outcome = open(dir.path()).and_then(|log| {
            let got = log.partition("t", 0)?.records(0, 1 << 20)?;
            Ok(got.len())
        });
        match outcome {
            Ok(n) => {
                // An index is rebuilt elsewhere: the data is all there.
                assert!(
                    !name.ends_with(".log"),
                    "{name}: opened a directory as a log"
                );
                assert_eq!(n, 1, "{name}");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains(name), "{name} clean={clean}: {text}");
                assert!(
                    text.to_lowercase().contains("is a directory"),
                    "{name} clean={clean}: {text}"
                );
                assert!(!text.contains("No such device"), "{name}: {text}");
            }
        }
    }
    Ok(())
}
