//! A clean open moves the clean-shutdown marker aside (a rename, not a delete: deleting it
//! frees its data block, which on a `discard` mount waits for the device), so a crash after
//! the open counts as unclean; a clean close deletes the moved marker and writes a new one; a
//! read-only open leaves the marker where it is.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::LogOptions;

#[test]
fn an_open_moves_the_clean_shutdown_marker_aside_and_a_crash_after_it_counts_as_unclean()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join(".kafka_cleanshutdown");
    let aside = dir.path().join(".kafka_cleanshutdown.consumed");
    {
        let log = open(dir.path())?;
        log.create_topic("events", 1)?;
        log.partition("events", 0)?.append(&[rec(0)])?;
        log.close()?;
    }
    assert!(marker.exists() && !aside.exists());
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    // Renamed, not deleted (a delete can wait for the device on `discard` mounts).
    assert!(!marker.exists() && aside.exists());
    log.partition("events", 0)?.append(&[rec(1)])?;
    // A crash now (no close): the next open must not see a clean marker.
    log.abandon();
    let log = open(dir.path())?;
    assert!(
        !log.recovery_report().clean,
        "a crash after an open is unclean"
    );
    assert_eq!(log.partition("events", 0)?.log_end_offset(), 2);
    log.close()?;
    assert!(
        marker.exists() && !aside.exists(),
        "a clean close deletes the renamed marker"
    );
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    log.close()?;
    // A read-only open inspects without taking the marker.
    let ro = LogOptions::new().read_only(true).open(dir.path())?;
    assert!(ro.recovery_report().clean);
    drop(ro);
    assert!(marker.exists() && !aside.exists());
    Ok(())
}
