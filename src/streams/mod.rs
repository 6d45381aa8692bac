//! Kafka Streams' model in process (feature `streams`, on by default): read topics,
//! transform, aggregate, join, and write topics, on the same [`crate::Log`], with no broker
//! round trip.
//!
//! - **Serdes** ([`Serde`], [`Serdes`]): Kafka's byte formats (UTF-8 strings, big-endian
//!   `i32`/`i64`/`f64`, bytes; JSON through serde with the `json` feature). [`TypedProducer`]
//!   and [`TypedConsumer`] use them without the DSL.
//! - **The DSL** ([`StreamsBuilder`], [`KStream`], [`KGroupedStream`], [`KTable`]): stateless
//!   operators (`filter`, `map`, `map_values`, `flat_map`, `flat_map_values`, `select_key`,
//!   `peek`, `foreach`, `split`, `merge`, `to`, `repartition`), aggregations (`group_by`/
//!   `group_by_key` then `count`, `reduce`, `aggregate`) into tables, table operators
//!   (`filter`, `map_values`, `to_stream`), and stream–table joins.
//! - **Windows** ([`TimeWindows`], [`TimeWindowedKStream`], [`Windowed`]): tumbling and
//!   hopping windows by event time with a grace period, window stores with retention,
//!   Kafka's windowed key format, and [`KTable::suppress`] ([`Suppressed`],
//!   [`BufferConfig`]) for one final result per window; session windows
//!   ([`SessionWindows`], [`SessionWindowedKStream`]); sliding windows ([`SlidingWindows`],
//!   [`SlidingWindowedKStream`]).
//! - **Joins**: stream–table (`KStream::join`, `left_join`), table–table (`KTable::join`,
//!   `left_join`, `outer_join`) and stream–stream in windows (`KStream::join_windowed`,
//!   `left_join_windowed`, `outer_join_windowed` with [`JoinWindows`]).
//! - **The processor API** ([`Processor`], [`ProcessorContext`], [`KeyValueStore`],
//!   [`StoreBuilder`]): `KStream::process` for what the DSL cannot say, with stores and
//!   punctuations by stream time or wall clock ([`PunctuationType`]).
//! - **Running** ([`Streams`]): `num.stream.threads` threads in the consumer group
//!   `application.id`. A task is a sub-topology with a partition; tasks with co-partitioned
//!   inputs share a task. Internal topics are named as Kafka names them:
//!   `<application.id>-<name>-repartition` when a key changes before a grouping or join, and
//!   `<application.id>-<store>-changelog` (compacted) for each store, replayed into the
//!   store when its task starts.
//! - **Testing** ([`TopologyTestDriver`]): pipe records in, read outputs and stores, with no
//!   threads.
//!
//! Under `processing.guarantee=at_least_once` (the only one this version runs) a commit
//! forwards what caches hold, writes the changelogs, waits for every output, then commits the
//! input offsets: after a crash, records since the last commit are processed again (counts
//! may go up twice for them), and nothing is lost.
//!
//! Stateless operators:
//! ```
//! use topiclog::streams::{Consumed, Produced, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! let builder = StreamsBuilder::new();
//! let orders = builder.stream("orders", Consumed::with(Serdes::string(), Serdes::i64()));
//! let branches = orders
//!     .filter(|_, amount| *amount > 0)
//!     .map_values(|amount| amount * 100)
//!     .split()
//!     .branch("large", |_, cents| *cents >= 10_000)
//!     .default_branch("small");
//! for (name, stream) in branches {
//!     stream.to(&name, Produced::default());
//! }
//! let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("orders"))?;
//! let (k, v) = (Serdes::string(), Serdes::i64());
//! driver.pipe_input("orders", &k, &v, &"ann".to_string(), &250, 0)?;
//! driver.pipe_input("orders", &k, &v, &"bob".to_string(), &3, 0)?;
//! driver.pipe_input("orders", &k, &v, &"cy".to_string(), &-1, 0)?;
//! assert_eq!(driver.read_output("KSTREAM-BRANCH-0000000003large", &k, &v)?, [("ann".to_string(), 25_000)]);
//! assert_eq!(driver.read_output("KSTREAM-BRANCH-0000000003small", &k, &v)?, [("bob".to_string(), 300)]);
//! # Ok::<_, topiclog::Error>(())
//! ```
//!
//! Aggregations and a stream–table join:
//! ```
//! use topiclog::streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! let builder = StreamsBuilder::new();
//! let names = builder.table(
//!     "names",
//!     Consumed::with(Serdes::string(), Serdes::string()),
//!     Materialized::named("names-store"),
//! );
//! let clicks = builder.stream("clicks", Consumed::with(Serdes::string(), Serdes::string()));
//! clicks
//!     .clone()
//!     .group_by_key(Grouped::default())
//!     .count(Materialized::named("clicks-per-user"))
//!     .to_stream()
//!     .to("click-counts", Produced::default());
//! clicks
//!     .left_join(&names, |page: &String, name: Option<&String>| {
//!         format!("{} visited {page}", name.map_or("someone", String::as_str))
//!     })
//!     .to("visits", Produced::with(Serdes::string(), Serdes::string()));
//! let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("clicks"))?;
//! let s = Serdes::string();
//! driver.pipe_input("names", &s, &s, &"u1".to_string(), &"Ann".to_string(), 0)?;
//! driver.pipe_input("clicks", &s, &s, &"u1".to_string(), &"/home".to_string(), 1)?;
//! driver.pipe_input("clicks", &s, &s, &"u2".to_string(), &"/faq".to_string(), 2)?;
//! assert_eq!(
//!     driver.read_output("visits", &s, &s)?,
//!     [
//!         ("u1".to_string(), "Ann visited /home".to_string()),
//!         ("u2".to_string(), "someone visited /faq".to_string()),
//!     ]
//! );
//! assert_eq!(driver.store_get::<String, i64>("clicks-per-user", &"u1".to_string())?, Some(1));
//! # Ok::<_, topiclog::Error>(())
//! ```

//! A windowed count with one final result per window:
//! ```
//! use std::time::Duration;
//! use topiclog::streams::{BufferConfig, Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig, Suppressed, TimeWindows, TopologyTestDriver};
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("views", Consumed::with(Serdes::string(), Serdes::string()))
//!     .group_by_key(Grouped::default())
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_mins(1), Duration::from_secs(10)))
//!     .count(Materialized::named("views-per-minute"))
//!     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
//!     .to_stream()
//!     .to("minutes", Produced::default());
//! let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("views"))?;
//! let s = Serdes::string();
//! for at in [1_000, 30_000, 59_000] {
//!     driver.pipe_input("views", &s, &s, &"ann".to_string(), &"/".to_string(), at)?;
//! }
//! // The minute [0, 60 s) closes at 70 s of stream time: a view at 75 s emits it.
//! driver.pipe_input("views", &s, &s, &"bob".to_string(), &"/".to_string(), 75_000)?;
//! let minutes = Serdes::time_windowed(Serdes::string(), Duration::from_mins(1));
//! let out = driver.read_output("minutes", &minutes, &Serdes::i64())?;
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].0.key.as_str(), out[0].0.window.start, out[0].1), ("ann", 0, 3));
//! # Ok::<_, topiclog::Error>(())
//! ```

mod config;
mod driver;
mod dsl;
mod graph;
mod join;
mod node;
mod ops;
mod persist;
mod processor;
mod query;
mod runtime;
mod serde;
mod session;
mod sliding;
mod store;
mod suppress;
mod task;
mod window;

pub use config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig};
pub use driver::TopologyTestDriver;
pub use dsl::{
    BranchedStream, Consumed, Data, Grouped, KGroupedStream, KStream, KTable, Materialized,
    Produced, Repartitioned, SessionWindowedKStream, SlidingWindowedKStream, StreamJoined,
    StreamsBuilder, TimeWindowedKStream,
};
pub use graph::{StoreType, Topology};
pub use join::JoinWindows;
pub use node::PunctuationType;
pub use processor::{KeyValueStore, Processor, ProcessorContext, ScheduleId, StoreBuilder};
pub use query::{ReadOnlyKeyValueStore, ReadOnlyWindowStore};
pub use runtime::{Streams, StreamsState, ThreadErrorResponse};
#[cfg(feature = "json")]
pub use serde::JsonSerde;
pub use serde::{
    BytesSerde, F64Serde, I32Serde, I64Serde, Nullable, Serde, Serdes, SharedSerde, StringSerde,
    TypedConsumer, TypedProducer, TypedRecord, UnitSerde,
};
pub use session::{SessionWindowedSerde, SessionWindows};
pub use sliding::SlidingWindows;
pub use suppress::{BufferConfig, BufferFull, Suppressed};
pub use window::{TimeWindowedSerde, TimeWindows, Window, Windowed};
