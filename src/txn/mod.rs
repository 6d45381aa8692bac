//! Transactions across partitions, as Kafka's transaction coordinator runs them, in process:
//! each transactional id's state (producer id, epoch, status, partitions) is a record in the
//! internal topic `__transaction_state`; `commit_transaction` and `abort_transaction` make a
//! PrepareCommit or PrepareAbort record durable, then write a COMMIT or ABORT marker to every
//! partition of the transaction, then a CompleteCommit or CompleteAbort record. The open of a
//! log finishes what a crash interrupted (`start.rs`); the log's background thread aborts
//! transactions left open past their timeout (`coordinator.rs`).

mod api;
mod codec;
mod coordinator;
mod start;

pub(crate) use coordinator::TxnCoordinator;
pub(crate) use start::start;
