//! A data directory has an identity (`topiclog.properties`): a read-write open of a non-empty
//! folder without it is refused and touches nothing; empty and new folders get one; a
//! directory from a topiclog before the file is adopted once; read-only opens write nothing.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::fs;
use std::path::Path;

use common::{TestResult, dir_names, open, quiet};
use topiclog::{Error, Record};

/// A home folder with things in it that look like partition directories.
fn users_folder(dir: &Path) -> TestResult {
    for d in ["photos-2024", "release-1", "notes"] {
        fs::create_dir(dir.join(d))?;
        fs::write(dir.join(d).join("keep.txt"), d)?;
    }
    fs::write(dir.join("todo.txt"), "buy milk")?;
    Ok(())
}

#[test]
fn a_users_folder_is_refused_and_left_as_it_was() -> TestResult {
    let dir = tempfile::tempdir()?;
    users_folder(dir.path())?;
    let before = dir_names(dir.path())?;
    match open(dir.path()) {
        Err(Error::NotADataDirectory { path, reason }) => {
            assert_eq!(path, dir.path());
            assert!(reason.contains("topiclog.properties"), "{reason}");
        }
        other => panic!("expected NotADataDirectory, got {other:?}"),
    }
    // Not even a lock file was left, and every folder is whole.
    assert_eq!(dir_names(dir.path())?, before);
    for d in ["photos-2024", "release-1", "notes"] {
        assert_eq!(fs::read_to_string(dir.path().join(d).join("keep.txt"))?, d);
    }
    // Read-only is refused the same way.
    assert!(matches!(
        quiet().read_only(true).open(dir.path()),
        Err(Error::NotADataDirectory { .. })
    ));
    Ok(())
}

#[test]
fn new_and_empty_folders_get_an_identity_that_lasts() -> TestResult {
    let dir = tempfile::tempdir()?;
    for d in [dir.path().join("new/nested"), dir.path().join("empty")] {
        if d.ends_with("empty") {
            fs::create_dir(&d)?;
        }
        let log = open(&d)?;
        let id = log.directory_id().ok_or("no directory id")?.to_string();
        assert_eq!(id.len(), 22);
        assert!(!log.recovery_report().adopted);
        log.create_topic("t", 1)?;
        log.close()?;
        let text = fs::read_to_string(d.join("topiclog.properties"))?;
        assert!(text.contains("format.version=1"), "{text}");
        assert!(text.contains(&format!("directory.id={id}")), "{text}");
        let log = open(&d)?;
        assert_eq!(log.directory_id(), Some(id.as_str()));
        log.close()?;
    }
    Ok(())
}

#[test]
fn a_directory_from_an_earlier_topiclog_is_adopted_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("orders", 2)?;
    log.partition("orders", 1)?.append(&[Record::new("kept")])?;
    log.close()?;
    // As an earlier topiclog left it: no identity file.
    fs::remove_file(dir.path().join("topiclog.properties"))?;

    // A read-only open reads it and writes nothing.
    let ro = quiet().read_only(true).open(dir.path())?;
    assert_eq!(ro.directory_id(), None);
    assert_eq!(ro.partition("orders", 1)?.log_end_offset(), 1);
    drop(ro);
    assert!(!dir.path().join("topiclog.properties").exists());

    let log = open(dir.path())?;
    assert!(log.recovery_report().adopted);
    assert!(
        log.recovery_report()
            .notices()
            .iter()
            .any(|n| n.contains("adopted")),
        "{:?}",
        log.recovery_report().notices()
    );
    let id = log.directory_id().ok_or("no directory id")?.to_string();
    assert_eq!(
        log.partition("orders", 1)?.records(0, 1 << 20)?[0]
            .value
            .as_deref(),
        Some(&b"kept"[..])
    );
    log.close()?;
    let log = open(dir.path())?;
    assert!(!log.recovery_report().adopted);
    assert_eq!(log.directory_id(), Some(id.as_str()));
    log.close()?;
    Ok(())
}

#[test]
fn a_file_is_not_a_directory_and_a_newer_format_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("data");
    fs::write(&file, "not a directory")?;
    match open(&file) {
        Err(e @ Error::NotADataDirectory { .. }) => {
            assert!(e.to_string().contains("not a directory"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        quiet().read_only(true).open(&file),
        Err(Error::NotADataDirectory { .. })
    ));
    assert_eq!(fs::read_to_string(&file)?, "not a directory");

    let newer = dir.path().join("newer");
    open(&newer)?.close()?;
    fs::write(
        newer.join("topiclog.properties"),
        "format.version=2\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n",
    )?;
    match open(&newer) {
        Err(e @ Error::NotADataDirectory { .. }) => {
            assert!(e.to_string().contains("format version 2"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn a_data_directory_that_lost_its_identity_opens_again_with_a_hand_written_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", 1)?;
    log.partition("t", 0)?.append(&[Record::new("v")])?;
    log.close()?;
    fs::remove_file(dir.path().join("topiclog.properties"))?;
    fs::remove_file(dir.path().join("recovery-point-offset-checkpoint"))?;
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("format.version=1"), "{err}");
    fs::write(dir.path().join("topiclog.properties"), "format.version=1\n")?;
    let log = open(dir.path())?;
    assert_eq!(log.directory_id().map(str::len), Some(22));
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 1);
    log.close()?;
    Ok(())
}
