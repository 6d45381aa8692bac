//! The seed's WordCount topology, shared by `examples/wordcount.rs`, `benches/streams.rs`
//! and the tests that run it: lines of `input` → lowercase, split on spaces → grouped by
//! word → counted in the store `counts` → `output`, with `String` keys and `i64` values
//! (Kafka's `LongSerializer`).

use topiclog::streams::{
    Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, Topology,
};

/// WordCount from `input` to `output`.
///
/// # Errors
/// As `StreamsBuilder::build`.
pub fn wordcount(input: &str, output: &str) -> topiclog::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.to_lowercase()
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(
            |(), word: &String| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::named("counts").with_key_serde(Serdes::string()))
        .to_stream()
        .to(output, Produced::with(Serdes::string(), Serdes::i64()));
    builder.build()
}
