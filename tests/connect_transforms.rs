//! Kafka Connect's single message transforms and predicates, configured with Kafka's keys, do
//! to schemaless and schema'd records what Kafka's do; bad configurations name the bad key.

mod common;

use std::collections::BTreeMap;

use common::TestResult;
use topiclog::Error;
use topiclog::connect::data::TIMESTAMP_SCHEMA_NAME;
use topiclog::connect::transform::TransformChain;
use topiclog::connect::{ConnectRecord, Field, Schema, SchemaType, Value};

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Runs `record` through the chain `pairs` configures.
fn run(pairs: &[(&str, &str)], record: ConnectRecord) -> TestResult<Option<ConnectRecord>> {
    Ok(TransformChain::from_config(&config(pairs))?.apply(record)?)
}

/// Like [`run`], for a chain that must keep the record.
fn kept(pairs: &[(&str, &str)], record: ConnectRecord) -> TestResult<ConnectRecord> {
    Ok(run(pairs, record)?.ok_or("the chain dropped the record")?)
}

/// The reason of the data error the chain gives for `record`.
fn data_error(pairs: &[(&str, &str)], record: ConnectRecord) -> TestResult<String> {
    match TransformChain::from_config(&config(pairs))?.apply(record) {
        Err(Error::ConnectData { reason }) => Ok(reason),
        other => Err(format!("expected a data error, got {other:?}").into()),
    }
}

/// The key an invalid configuration is refused for.
fn refused_key(pairs: &[(&str, &str)]) -> TestResult<String> {
    match TransformChain::from_config(&config(pairs)) {
        Err(Error::InvalidConfig { field, .. }) => Ok(field),
        Err(e) => Err(format!("expected InvalidConfig, got {e}").into()),
        Ok(_) => Err("the configuration was accepted".into()),
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn structure(fields: &[(&str, Value)]) -> Value {
    Value::Struct(
        fields
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect(),
    )
}

fn field(name: &str, schema: Schema) -> Field {
    Field {
        name: name.into(),
        schema,
    }
}

fn names(schema: &Schema) -> Vec<&str> {
    schema.fields.iter().map(|f| &*f.name).collect()
}

/// A struct schema `user` (version 2) of id int64, name string, email optional string.
fn user_schema() -> Schema {
    Schema {
        version: Some(2),
        ..Schema::structure(vec![
            field("id", Schema::of(SchemaType::Int64)),
            field("name", Schema::of(SchemaType::String)),
            field("email", Schema::of(SchemaType::String).optional()),
        ])
        .named("user")
    }
}

fn user() -> Value {
    structure(&[
        ("id", Value::Int(42)),
        ("name", s("Ada")),
        ("email", s("ada@example.com")),
    ])
}

fn sink_record(value_schema: Option<Schema>, value: Value) -> ConnectRecord {
    ConnectRecord {
        partition: Some(3),
        timestamp: Some(1_709_211_909_007), // 2024-02-29T13:05:09.007Z
        offset: Some(1234),
        original: None,
        ..ConnectRecord::new("orders", value_schema, value)
    }
}

const INSERT_SOURCE: &[(&str, &str)] = &[
    ("transforms", "InsertSource"),
    (
        "transforms.InsertSource.type",
        "org.apache.kafka.connect.transforms.InsertField$Value",
    ),
    ("transforms.InsertSource.static.field", "data_source"),
    ("transforms.InsertSource.static.value", "test-file-source"),
];

#[test]
fn insert_field_adds_the_static_field_of_kafkas_quickstart() -> TestResult {
    let out = kept(
        INSERT_SOURCE,
        ConnectRecord::new("connect-test", None, map(&[("line", s("foo"))])),
    )?;
    assert_eq!(
        out.value,
        map(&[("line", s("foo")), ("data_source", s("test-file-source"))])
    );
    assert_eq!(out.value_schema, None);
    assert_eq!(out.topic, "connect-test");
    Ok(())
}

const INSERT_ALL: &[(&str, &str)] = &[
    ("transforms", "meta"),
    ("transforms.meta.type", "InsertField$Value"),
    ("transforms.meta.topic.field", "topic!"),
    ("transforms.meta.partition.field", "partition?"),
    ("transforms.meta.offset.field", "offset"),
    ("transforms.meta.timestamp.field", "ts"),
    ("transforms.meta.static.field", "source!"),
    ("transforms.meta.static.value", "crm"),
];

#[test]
fn insert_field_adds_record_metadata_to_a_schemaless_value() -> TestResult {
    let out = kept(INSERT_ALL, sink_record(None, map(&[("id", Value::Int(1))])))?;
    assert_eq!(
        out.value,
        map(&[
            ("id", Value::Int(1)),
            ("topic", s("orders")),
            ("partition", Value::Int(3)),
            ("offset", Value::Int(1234)),
            ("ts", Value::Int(1_709_211_909_007)),
            ("source", s("crm")),
        ])
    );
    // A source record has no offset, and this one no partition or timestamp: optional fields
    // are left out.
    let out = kept(
        INSERT_ALL,
        ConnectRecord::new("orders", None, map(&[("id", Value::Int(1))])),
    )?;
    assert_eq!(
        out.value,
        map(&[
            ("id", Value::Int(1)),
            ("topic", s("orders")),
            ("source", s("crm"))
        ])
    );
    Ok(())
}

#[test]
fn insert_field_extends_the_schema_with_typed_fields() -> TestResult {
    let out = kept(INSERT_ALL, sink_record(Some(user_schema()), user()))?;
    let schema = out.value_schema.ok_or("no schema")?;
    assert_eq!(schema.kind, SchemaType::Struct);
    assert_eq!(schema.name.as_deref(), Some("user"));
    assert_eq!(schema.version, Some(2));
    assert_eq!(
        names(&schema),
        [
            "id",
            "name",
            "email",
            "topic",
            "partition",
            "offset",
            "ts",
            "source"
        ]
    );
    let schema_of = |name: &str| schema.field(name).map(|f| f.schema.clone());
    assert_eq!(schema_of("topic"), Some(Schema::of(SchemaType::String)));
    assert_eq!(
        schema_of("partition"),
        Some(Schema::of(SchemaType::Int32).optional())
    );
    assert_eq!(
        schema_of("offset"),
        Some(Schema::of(SchemaType::Int64).optional())
    );
    assert_eq!(schema_of("ts"), Some(Schema::timestamp().optional()));
    assert_eq!(
        schema_of("ts").and_then(|s| s.name),
        Some(TIMESTAMP_SCHEMA_NAME.to_string())
    );
    assert_eq!(schema_of("source"), Some(Schema::of(SchemaType::String)));
    assert_eq!(
        out.value,
        structure(&[
            ("id", Value::Int(42)),
            ("name", s("Ada")),
            ("email", s("ada@example.com")),
            ("topic", s("orders")),
            ("partition", Value::Int(3)),
            ("offset", Value::Int(1234)),
            ("ts", Value::Int(1_709_211_909_007)),
            ("source", s("crm")),
        ])
    );
    // Optional fields without a value in the record are null.
    let out = kept(
        INSERT_ALL,
        ConnectRecord::new("orders", Some(user_schema()), user()),
    )?;
    assert_eq!(out.value.get("offset"), Some(&Value::Null));
    assert_eq!(out.value.get("partition"), Some(&Value::Null));
    assert_eq!(out.value.get("topic"), Some(&s("orders")));
    Ok(())
}

#[test]
fn insert_field_refuses_a_required_offset_for_a_source_record() -> TestResult {
    let pairs = [
        ("transforms", "meta"),
        ("transforms.meta.type", "InsertField$Value"),
        ("transforms.meta.offset.field", "offset!"),
    ];
    let source = || ConnectRecord::new("orders", None, map(&[("id", Value::Int(1))]));
    assert!(data_error(&pairs, source())?.contains("offset"));
    let out = kept(&pairs, sink_record(None, map(&[("id", Value::Int(1))])))?;
    assert_eq!(out.value.get("offset"), Some(&Value::Int(1234)));
    Ok(())
}

#[test]
fn insert_field_works_on_keys_and_passes_tombstones() -> TestResult {
    let pairs = [
        ("transforms", "k"),
        ("transforms.k.type", "InsertField$Key"),
        ("transforms.k.topic.field", "t"),
    ];
    let mut record = ConnectRecord::new("orders", None, Value::Null);
    record.key = map(&[("id", Value::Int(7))]);
    let out = kept(&pairs, record)?;
    assert_eq!(out.key, map(&[("id", Value::Int(7)), ("t", s("orders"))]));
    assert_eq!(out.value, Value::Null);

    let tombstone = ConnectRecord::new("orders", Some(user_schema()), Value::Null);
    assert_eq!(kept(INSERT_ALL, tombstone.clone())?, tombstone);
    // A value that is not a map or struct is refused.
    let reason = data_error(INSERT_ALL, ConnectRecord::new("orders", None, s("text")))?;
    assert!(reason.contains("map"), "{reason}");
    Ok(())
}

#[test]
fn replace_field_renames_and_drops_schemaless_fields() -> TestResult {
    // Kafka's documented example: rename foo to c1 and bar to c2, drop c2 (the original).
    let pairs = [
        ("transforms", "rf"),
        ("transforms.rf.type", "ReplaceField$Value"),
        ("transforms.rf.exclude", "c2"),
        ("transforms.rf.renames", "foo:c1,bar:c2"),
    ];
    let value = map(&[
        ("foo", Value::Int(1)),
        ("bar", Value::Int(2)),
        ("c2", Value::Int(3)),
        ("other", Value::Boolean(true)),
    ]);
    let out = kept(&pairs, ConnectRecord::new("t", None, value))?;
    assert_eq!(
        out.value,
        map(&[
            ("c1", Value::Int(1)),
            ("c2", Value::Int(2)),
            ("other", Value::Boolean(true))
        ])
    );
    Ok(())
}

#[test]
fn replace_field_builds_the_new_schema() -> TestResult {
    let pairs = [
        ("transforms", "rf"),
        ("transforms.rf.type", "ReplaceField$Value"),
        ("transforms.rf.include", "id, email"),
        ("transforms.rf.renames", "email:contact"),
    ];
    let out = kept(&pairs, ConnectRecord::new("t", Some(user_schema()), user()))?;
    let schema = out.value_schema.ok_or("no schema")?;
    assert_eq!(names(&schema), ["id", "contact"]);
    assert_eq!(schema.name.as_deref(), Some("user"));
    assert_eq!(
        schema.field("contact").map(|f| &f.schema),
        Some(&Schema::of(SchemaType::String).optional())
    );
    assert_eq!(
        out.value,
        structure(&[("id", Value::Int(42)), ("contact", s("ada@example.com"))])
    );
    // The deprecated names still work.
    let old = [
        ("transforms", "rf"),
        ("transforms.rf.type", "ReplaceField$Value"),
        ("transforms.rf.blacklist", "name,email"),
    ];
    let out = kept(&old, ConnectRecord::new("t", Some(user_schema()), user()))?;
    assert_eq!(out.value, structure(&[("id", Value::Int(42))]));
    // Renaming onto a field that stays is a schema with two fields of one name: refused.
    let clash = [
        ("transforms", "rf"),
        ("transforms.rf.type", "ReplaceField$Value"),
        ("transforms.rf.renames", "id:name"),
    ];
    let reason = data_error(&clash, ConnectRecord::new("t", Some(user_schema()), user()))?;
    assert!(reason.contains("name"), "{reason}");
    Ok(())
}

#[test]
fn mask_field_empties_fields_by_type() -> TestResult {
    let pairs = [
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "n,f,b,s,bytes,a,m,missing"),
    ];
    let value = map(&[
        ("n", Value::Int(5)),
        ("f", Value::Float(2.5)),
        ("b", Value::Boolean(true)),
        ("s", s("secret")),
        ("bytes", Value::Bytes(bytes::Bytes::from_static(b"xyz"))),
        ("a", Value::Array(vec![Value::Int(1)])),
        ("m", map(&[("k", Value::Int(1))])),
        ("kept", s("visible")),
    ]);
    let out = kept(&pairs, ConnectRecord::new("t", None, value))?;
    assert_eq!(
        out.value,
        map(&[
            ("n", Value::Int(0)),
            ("f", Value::Float(0.0)),
            ("b", Value::Boolean(false)),
            ("s", s("")),
            ("bytes", Value::Bytes(bytes::Bytes::new())),
            ("a", Value::Array(Vec::new())),
            ("m", Value::Map(Vec::new())),
            ("kept", s("visible")),
            // Kafka puts every masked field, so one the value lacks appears as null.
            ("missing", Value::Null),
        ])
    );
    Ok(())
}

#[test]
fn mask_field_replaces_with_a_value_parsed_as_the_field_type() -> TestResult {
    let schema = Schema::structure(vec![
        field("ssn", Schema::of(SchemaType::String)),
        field("pin", Schema::of(SchemaType::Int16)),
        field("score", Schema::of(SchemaType::Float64)),
        field("note", Schema::of(SchemaType::String).optional()),
    ]);
    let value = structure(&[
        ("ssn", s("123-45-6789")),
        ("pin", Value::Int(1234)),
        ("score", Value::Float(9.5)),
        ("note", Value::Null),
    ]);
    let pairs = |replacement: &'static str| {
        [
            ("transforms", "m"),
            ("transforms.m.type", "MaskField$Value"),
            ("transforms.m.fields", "ssn,note"),
            ("transforms.m.replacement", replacement),
        ]
    };
    let out = kept(
        &pairs("***"),
        ConnectRecord::new("t", Some(schema.clone()), value.clone()),
    )?;
    assert_eq!(out.value_schema.as_deref(), Some(&schema));
    assert_eq!(
        out.value,
        structure(&[
            ("ssn", s("***")),
            ("pin", Value::Int(1234)),
            ("score", Value::Float(9.5)),
            ("note", Value::Null),
        ])
    );

    let numbers = [
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "pin,score"),
        ("transforms.m.replacement", "7"),
    ];
    let out = kept(
        &numbers,
        ConnectRecord::new("t", Some(schema.clone()), value.clone()),
    )?;
    assert_eq!(out.value.get("pin"), Some(&Value::Int(7)));
    assert_eq!(out.value.get("score"), Some(&Value::Float(7.0)));

    // Not a number, or too wide for an int16: refused.
    for bad in ["seven", "40000"] {
        let pairs = [
            ("transforms", "m"),
            ("transforms.m.type", "MaskField$Value"),
            ("transforms.m.fields", "pin"),
            ("transforms.m.replacement", bad),
        ];
        let reason = data_error(
            &pairs,
            ConnectRecord::new("t", Some(schema.clone()), value.clone()),
        )?;
        assert!(reason.contains(bad), "{reason}");
    }
    // A boolean cannot take a custom replacement.
    let flag = map(&[("ok", Value::Boolean(true))]);
    let pairs = [
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "ok"),
        ("transforms.m.replacement", "x"),
    ];
    data_error(&pairs, ConnectRecord::new("t", None, flag))?;
    Ok(())
}

#[test]
fn mask_field_masks_logical_types_to_their_zero() -> TestResult {
    let decimal = Schema {
        parameters: [("scale".to_string(), "2".to_string())].into(),
        ..Schema::of(SchemaType::Bytes).named("org.apache.kafka.connect.data.Decimal")
    };
    let schema = Schema::structure(vec![
        field("price", decimal),
        field("at", Schema::timestamp()),
    ]);
    let value = structure(&[
        (
            "price",
            Value::Bytes(bytes::Bytes::from_static(&[0x30, 0x39])),
        ),
        ("at", Value::Int(1_709_211_909_007)),
    ]);
    let pairs = [
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "price,at"),
    ];
    let out = kept(
        &pairs,
        ConnectRecord::new("t", Some(schema.clone()), value.clone()),
    )?;
    assert_eq!(
        out.value,
        structure(&[
            ("price", Value::Bytes(bytes::Bytes::from_static(&[0]))),
            ("at", Value::Int(0)),
        ])
    );
    // A timestamp is not a number to Kafka's MaskField: no custom replacement.
    let mut replaced = pairs.to_vec();
    replaced.push(("transforms.m.replacement", "5"));
    let reason = data_error(&replaced, ConnectRecord::new("t", Some(schema), value))?;
    assert!(reason.contains("replacement"), "{reason}");
    Ok(())
}

#[test]
fn value_to_key_copies_value_fields_into_the_key() -> TestResult {
    let pairs = [
        ("transforms", "vk"),
        (
            "transforms.vk.type",
            "org.apache.kafka.connect.transforms.ValueToKey",
        ),
        ("transforms.vk.fields", "id,name"),
    ];
    let out = kept(&pairs, ConnectRecord::new("t", Some(user_schema()), user()))?;
    assert_eq!(
        out.key_schema.as_deref(),
        Some(&Schema::structure(vec![
            field("id", Schema::of(SchemaType::Int64)),
            field("name", Schema::of(SchemaType::String)),
        ]))
    );
    assert_eq!(
        out.key,
        structure(&[("id", Value::Int(42)), ("name", s("Ada"))])
    );
    assert_eq!(out.value, user());

    let value = map(&[("id", Value::Int(1)), ("name", s("Bo")), ("x", Value::Null)]);
    let out = kept(&pairs, ConnectRecord::new("t", None, value.clone()))?;
    assert_eq!(out.key, map(&[("id", Value::Int(1)), ("name", s("Bo"))]));
    assert_eq!(out.key_schema, None);
    assert_eq!(out.value, value);

    let missing = [
        ("transforms", "vk"),
        ("transforms.vk.type", "ValueToKey"),
        ("transforms.vk.fields", "id,age"),
    ];
    let reason = data_error(
        &missing,
        ConnectRecord::new("t", Some(user_schema()), user()),
    )?;
    assert!(reason.contains("age"), "{reason}");
    Ok(())
}

#[test]
fn extract_field_replaces_the_key_with_one_of_its_fields() -> TestResult {
    // Kafka's documented example: {"id": 42, "cost": 4000} keyed records, keyed by id.
    let pairs = [
        ("transforms", "ef"),
        ("transforms.ef.type", "ExtractField$Key"),
        ("transforms.ef.field", "id"),
    ];
    let mut record = ConnectRecord::new("t", None, s("v"));
    record.key = map(&[("id", Value::Int(42)), ("cost", Value::Int(4000))]);
    let out = kept(&pairs, record)?;
    assert_eq!(out.key, Value::Int(42));
    assert_eq!(out.value, s("v"));

    // With a schema, the key takes the field's schema.
    let mut record = ConnectRecord::new("t", None, Value::Null);
    record.key_schema = Some(user_schema().into());
    record.key = user();
    let out = kept(&pairs, record)?;
    assert_eq!(out.key, Value::Int(42));
    assert_eq!(
        out.key_schema.as_deref(),
        Some(&Schema::of(SchemaType::Int64))
    );

    // A null key, or a schemaless key without the field, gives null.
    let out = kept(&pairs, ConnectRecord::new("t", None, s("v")))?;
    assert_eq!(out.key, Value::Null);
    let mut record = ConnectRecord::new("t", None, s("v"));
    record.key = map(&[("cost", Value::Int(1))]);
    assert_eq!(kept(&pairs, record)?.key, Value::Null);

    // A schema without the field is an error, as Kafka's "Unknown field".
    let value_pairs = [
        ("transforms", "ef"),
        ("transforms.ef.type", "ExtractField$Value"),
        ("transforms.ef.field", "age"),
    ];
    let reason = data_error(
        &value_pairs,
        ConnectRecord::new("t", Some(user_schema()), user()),
    )?;
    assert!(reason.contains("age"), "{reason}");
    Ok(())
}

#[test]
fn regex_router_rewrites_whole_matching_topics() -> TestResult {
    let pairs = [
        ("transforms", "route"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "(.*)-(.*)"),
        ("transforms.route.replacement", "$2"),
    ];
    let out = kept(&pairs, ConnectRecord::new("orders-eu", None, Value::Null))?;
    assert_eq!(out.topic, "eu");
    let out = kept(&pairs, ConnectRecord::new("orders", None, Value::Null))?;
    assert_eq!(out.topic, "orders");

    let prefix = [
        ("transforms", "route"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "(?<db>[a-z]+)\\.(?<table>[a-z]+)"),
        ("transforms.route.replacement", "mirror_${table}_from_$1\\$"),
    ];
    let out = kept(
        &prefix,
        ConnectRecord::new("sales.orders", None, Value::Null),
    )?;
    assert_eq!(out.topic, "mirror_orders_from_sales$");
    // A partial match is no match (Java's `matches()`).
    let out = kept(
        &prefix,
        ConnectRecord::new("sales.orders.v2", None, Value::Null),
    )?;
    assert_eq!(out.topic, "sales.orders.v2");

    // `matches()` then `replaceFirst()`: the first match found replaces, not the whole one.
    let first = [
        ("transforms", "route"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "a|ab"),
        ("transforms.route.replacement", "X"),
    ];
    assert_eq!(
        kept(&first, ConnectRecord::new("ab", None, Value::Null))?.topic,
        "Xb"
    );
    Ok(())
}

#[test]
fn timestamp_router_names_topics_by_record_time() -> TestResult {
    let pairs = [
        ("transforms", "tr"),
        ("transforms.tr.type", "TimestampRouter"),
    ];
    let out = kept(&pairs, sink_record(None, Value::Null))?;
    assert_eq!(out.topic, "orders-20240229");

    // Confluent's documented example.
    let custom = [
        ("transforms", "tr"),
        ("transforms.tr.type", "TimestampRouter"),
        ("transforms.tr.topic.format", "foo-${topic}-${timestamp}"),
        ("transforms.tr.timestamp.format", "YYYYMM"),
    ];
    assert_eq!(
        kept(&custom, sink_record(None, Value::Null))?.topic,
        "foo-orders-202402"
    );
    let hourly = [
        ("transforms", "tr"),
        ("transforms.tr.type", "TimestampRouter"),
        ("transforms.tr.topic.format", "${timestamp}.${topic}"),
        ("transforms.tr.timestamp.format", "yyyy-MM-dd'T'HH"),
    ];
    assert_eq!(
        kept(&hourly, sink_record(None, Value::Null))?.topic,
        "2024-02-29T13.orders"
    );

    let reason = data_error(&pairs, ConnectRecord::new("orders", None, Value::Null))?;
    assert!(reason.contains("timestamp"), "{reason}");
    Ok(())
}

#[test]
fn filter_with_a_topic_predicate_drops_only_matching_records() -> TestResult {
    let pairs = [
        ("transforms", "drop"),
        (
            "transforms.drop.type",
            "org.apache.kafka.connect.transforms.Filter",
        ),
        ("transforms.drop.predicate", "isFoo"),
        ("predicates", "isFoo"),
        (
            "predicates.isFoo.type",
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        ),
        ("predicates.isFoo.pattern", "foo.*"),
    ];
    assert_eq!(
        run(&pairs, ConnectRecord::new("foo-1", None, Value::Null))?,
        None
    );
    let bar = ConnectRecord::new("bar-foo", None, Value::Null);
    assert_eq!(run(&pairs, bar.clone())?, Some(bar.clone()));

    // Negated: everything but the matching topics is dropped.
    let mut negated = pairs.to_vec();
    negated.push(("transforms.drop.negate", "true"));
    assert_eq!(run(&negated, bar)?, None);
    let foo = ConnectRecord::new("foo", None, Value::Null);
    assert_eq!(run(&negated, foo.clone())?, Some(foo));

    // Without a predicate, Filter drops everything.
    let all = [("transforms", "f"), ("transforms.f.type", "Filter")];
    assert_eq!(run(&all, ConnectRecord::new("x", None, s("v")))?, None);
    Ok(())
}

#[test]
fn predicates_gate_transforms_on_headers_and_tombstones() -> TestResult {
    let pairs = [
        ("transforms", "mark,drop"),
        ("transforms.mark.type", "InsertField$Value"),
        ("transforms.mark.static.field", "traced"),
        ("transforms.mark.static.value", "yes"),
        ("transforms.mark.predicate", "hasTrace"),
        ("transforms.drop.type", "Filter"),
        ("transforms.drop.predicate", "tombstone"),
        ("predicates", "hasTrace,tombstone"),
        ("predicates.hasTrace.type", "HasHeaderKey"),
        ("predicates.hasTrace.name", "trace-id"),
        ("predicates.tombstone.type", "RecordIsTombstone"),
    ];
    let mut traced = ConnectRecord::new("t", None, map(&[("a", Value::Int(1))]));
    traced.add_header("trace-id", None);
    let out = kept(&pairs, traced)?;
    assert_eq!(
        out.value,
        map(&[("a", Value::Int(1)), ("traced", s("yes"))])
    );

    let plain = ConnectRecord::new("t", None, map(&[("a", Value::Int(1))]));
    assert_eq!(kept(&pairs, plain.clone())?, plain);

    assert_eq!(
        run(&pairs, ConnectRecord::new("t", None, Value::Null))?,
        None
    );
    Ok(())
}

#[test]
fn transforms_run_in_the_listed_order() -> TestResult {
    let pairs = [
        ("transforms", "key,extract,route"),
        ("transforms.key.type", "ValueToKey"),
        ("transforms.key.fields", "id"),
        ("transforms.extract.type", "ExtractField$Key"),
        ("transforms.extract.field", "id"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "orders"),
        ("transforms.route.replacement", "orders-by-id"),
    ];
    let out = kept(
        &pairs,
        ConnectRecord::new("orders", Some(user_schema()), user()),
    )?;
    assert_eq!(out.key, Value::Int(42));
    assert_eq!(
        out.key_schema.as_deref(),
        Some(&Schema::of(SchemaType::Int64))
    );
    assert_eq!(out.topic, "orders-by-id");
    assert!(TransformChain::from_config(&config(&[]))?.is_empty());
    Ok(())
}

#[test]
fn bad_configurations_name_the_key() -> TestResult {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("transforms", "a"), ("transforms.a.type", "Nope")],
            "transforms.a.type",
        ),
        (
            &[("transforms", "a"), ("transforms.a.type", "InsertField")],
            "transforms.a.type",
        ),
        (&[("transforms", "a")], "transforms.a.type"),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "InsertField$Value"),
            ],
            "transforms.a.type",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "InsertField$Value"),
                ("transforms.a.static.field", "x"),
            ],
            "transforms.a.static.value",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "RegexRouter"),
                ("transforms.a.regex", "(unclosed"),
                ("transforms.a.replacement", "x"),
            ],
            "transforms.a.regex",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "RegexRouter"),
                ("transforms.a.regex", "(.*)"),
                ("transforms.a.replacement", "$2"),
            ],
            "transforms.a.replacement",
        ),
        (
            &[("transforms", "a"), ("transforms.a.type", "RegexRouter")],
            "transforms.a.regex",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "ReplaceField$Value"),
                ("transforms.a.renames", "a:b:c"),
            ],
            "transforms.a.renames",
        ),
        (
            &[("transforms", "a"), ("transforms.a.type", "MaskField$Key")],
            "transforms.a.fields",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "ValueToKey"),
                ("transforms.a.fields", ""),
            ],
            "transforms.a.fields",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "ExtractField$Value"),
            ],
            "transforms.a.field",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "TimestampRouter"),
                ("transforms.a.timestamp.format", "yyyy-ww"),
            ],
            "transforms.a.timestamp.format",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.predicate", "p"),
            ],
            "transforms.a.predicate",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.negate", "true"),
            ],
            "transforms.a.negate",
        ),
        (
            &[
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.predicate", "p"),
                ("transforms.a.negate", "yes"),
                ("predicates", "p"),
                ("predicates.p.type", "RecordIsTombstone"),
            ],
            "transforms.a.negate",
        ),
        (
            &[("predicates", "p"), ("predicates.p.type", "TopicIs")],
            "predicates.p.type",
        ),
        (
            &[
                ("predicates", "p"),
                ("predicates.p.type", "TopicNameMatches"),
            ],
            "predicates.p.pattern",
        ),
        (
            &[
                ("predicates", "p"),
                ("predicates.p.type", "TopicNameMatches"),
                ("predicates.p.pattern", "[z-a]"),
            ],
            "predicates.p.pattern",
        ),
        (
            &[("predicates", "p"), ("predicates.p.type", "HasHeaderKey")],
            "predicates.p.name",
        ),
        (
            &[("transforms", "a,a"), ("transforms.a.type", "Filter")],
            "transforms",
        ),
    ];
    for (pairs, key) in cases {
        assert_eq!(refused_key(pairs)?, *key, "for {pairs:?}");
    }
    Ok(())
}
