//! Reading `Score`s of every version weir has written.
//!
//! Versions 1 and 2 of the `score` subject named the entity `card_id` and carried one
//! binary probability `score`; version 3 names it `key` and carries a [`ModelOutput`]
//! union. Avro's resolution rules cannot map a renamed field or a double onto a union, so
//! an earlier writer is decoded into [`EarlierScore`] (read with the version 2 schema,
//! which reads version 1 too) and upgraded; a version 3 writer decodes directly. Topics
//! written before an upgrade therefore stay readable by the monitor, the learner and the
//! tests.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{ErrorClass, EventError, Result, SchemaError};
use crate::events::{FeatureValue, ModelOutput, Reason, Score};
use crate::wire::{subjects, unframe, Decoder, RegisteredSchema, SchemaRegistry};

/// The reader schema of the earlier shape: version 2, a superset of version 1.
const EARLIER_READER: &str = include_str!("../avro/score-v2.avsc");

/// A `Score` as versions 1 and 2 wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EarlierScore {
    pub event_id: String,
    pub card_id: String,
    pub event_time: i64,
    pub model_name: String,
    pub model_version: String,
    /// Probability of the positive class.
    pub score: f64,
    pub decision: String,
    pub features: Vec<FeatureValue>,
    #[serde(default)]
    pub reasons: Vec<Reason>,
    pub scored_at: i64,
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl From<EarlierScore> for Score {
    fn from(s: EarlierScore) -> Score {
        Score {
            event_id: s.event_id,
            key: s.card_id,
            event_time: s.event_time,
            model_name: s.model_name,
            model_version: s.model_version,
            output: ModelOutput::binary(s.score),
            decision: s.decision,
            features: s.features,
            reasons: s.reasons,
            scored_at: s.scored_at,
            attributes: s.attributes,
        }
    }
}

/// Decodes framed `Score`s of any version into the current [`Score`].
pub struct ScoreDecoder {
    current: Decoder<Score>,
    earlier: Decoder<EarlierScore>,
}

impl ScoreDecoder {
    /// Reads the `score` subject's writers registered in `registry`. The current reader is
    /// the subject's latest schema; it must be version 3 or later (a registry holding only
    /// earlier versions is refused: weir could not write scores its own readers expect).
    pub fn new(registry: Arc<dyn SchemaRegistry>) -> Result<Self> {
        let latest = registry.latest(subjects::SCORE)?;
        if !latest.text.contains("\"output\"") {
            return Err(SchemaError::Parse {
                id: latest.id,
                file: format!("subject {}", subjects::SCORE),
                message: "the latest score schema has no `output` field: register score-v3.avsc".into(),
            });
        }
        let earlier_reader = earlier_reader()?;
        Ok(ScoreDecoder {
            current: Decoder::new(registry.clone(), subjects::SCORE, &latest),
            earlier: Decoder::new(registry, subjects::SCORE, &earlier_reader),
        })
    }

    /// Decodes one framed value. Never panics, whatever the bytes.
    pub fn decode(&self, bytes: &[u8]) -> std::result::Result<Score, EventError> {
        unframe(bytes)?;
        match self.current.decode(bytes) {
            Err(e) if e.class == ErrorClass::UnknownSchema => match self.earlier.decode(bytes) {
                Ok(earlier) => Ok(earlier.into()),
                // Neither shape reads it: the current reader's reason is the one to report.
                Err(_) => Err(e),
            },
            other => other,
        }
    }
}

fn earlier_reader() -> Result<RegisteredSchema> {
    let parse_err = |message: String| SchemaError::Parse { id: 0, file: "score-v2.avsc".into(), message };
    Ok(RegisteredSchema {
        id: 0,
        subject: subjects::SCORE.to_string(),
        text: EARLIER_READER.to_string(),
        fast: EARLIER_READER.parse().map_err(|e| parse_err(format!("{e}")))?,
        canonical: apache_avro::Schema::parse_str(EARLIER_READER).map_err(|e| parse_err(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BinaryOutput, ClassProbability, MultiClassOutput, RegressionOutput};
    use crate::wire::{write_header, Encoder, LocalSchemaRegistry};

    fn registry() -> Arc<dyn SchemaRegistry> {
        Arc::new(LocalSchemaRegistry::embedded().unwrap())
    }

    fn score(output: ModelOutput) -> Score {
        Score {
            event_id: "e1".into(),
            key: "card-7".into(),
            event_time: 1_700_000_000_000,
            model_name: "fraud".into(),
            model_version: "v3".into(),
            output,
            decision: "review".into(),
            features: vec![FeatureValue { name: "amount".into(), value: 12.5 }],
            reasons: vec![Reason { feature: "amount".into(), value: 12.5, contribution: 0.4 }],
            scored_at: 1_700_000_000_100,
            attributes: [("customer_segment".to_string(), "retail".to_string())].into(),
        }
    }

    #[test]
    fn every_output_kind_round_trips_through_the_current_schema() {
        let registry = registry();
        let encoder = Encoder::new(registry.as_ref(), subjects::SCORE).unwrap();
        assert_eq!(encoder.schema_id(), 9);
        let decoder = ScoreDecoder::new(registry).unwrap();
        for output in [
            ModelOutput::Binary(BinaryOutput { probability: 0.25 }),
            ModelOutput::MultiClass(MultiClassOutput {
                classes: vec![
                    ClassProbability { label: "a".into(), probability: 0.7 },
                    ClassProbability { label: "b".into(), probability: 0.3 },
                ],
            }),
            ModelOutput::Regression(RegressionOutput { value: -3.5 }),
        ] {
            let s = score(output);
            assert_eq!(decoder.decode(&encoder.encode(&s).unwrap()).unwrap(), s);
        }
    }

    #[test]
    fn the_output_union_is_what_the_avsc_says_on_the_wire() {
        // Independent of serde: the union branch index and the double follow the body's
        // strings, as the Avro spec lays them out (zig-zag varint branch 2 = regression).
        let registry = registry();
        let encoder = Encoder::new(registry.as_ref(), subjects::SCORE).unwrap();
        let bytes = encoder.encode(&score(ModelOutput::Regression(RegressionOutput { value: 2.0 }))).unwrap();
        let value = apache_avro::from_avro_datum(&registry.by_id(9).unwrap().canonical, &mut &bytes[5..], None).unwrap();
        let apache_avro::types::Value::Record(fields) = value else { panic!("not a record") };
        let output = &fields.iter().find(|(n, _)| n == "output").unwrap().1;
        let apache_avro::types::Value::Union(branch, inner) = output else { panic!("not a union: {output:?}") };
        assert_eq!(*branch, 2);
        let apache_avro::types::Value::Record(inner) = inner.as_ref() else { panic!() };
        assert_eq!(inner[0], ("value".to_string(), apache_avro::types::Value::Double(2.0)));
        let key = &fields.iter().find(|(n, _)| n == "key").unwrap().1;
        assert_eq!(*key, apache_avro::types::Value::String("card-7".into()));
    }

    #[test]
    fn versions_one_and_two_decode_as_binary_outputs() {
        let registry = registry();
        let decoder = ScoreDecoder::new(registry.clone()).unwrap();
        // Written by hand with apache-avro from each earlier schema: not through weir's types.
        for id in [3u32, 7] {
            let schema = &registry.by_id(id).unwrap().canonical;
            let mut record = apache_avro::types::Record::new(schema).unwrap();
            record.put("event_id", "e9");
            record.put("card_id", "card-1");
            record.put("event_time", apache_avro::types::Value::TimestampMillis(1_700_000_000_000));
            record.put("model_name", "fraud");
            record.put("model_version", "v1");
            record.put("score", 0.875f64);
            record.put("decision", "decline");
            record.put("features", apache_avro::types::Value::Array(vec![]));
            record.put("scored_at", apache_avro::types::Value::TimestampMillis(1_700_000_000_005));
            if id == 7 {
                record.put("reasons", apache_avro::types::Value::Array(vec![]));
                record.put("attributes", apache_avro::types::Value::Map([("channel".to_string(), "ecom".into())].into()));
            }
            let mut bytes = Vec::new();
            write_header(&mut bytes, id);
            bytes.extend(apache_avro::to_avro_datum(schema, record).unwrap());
            let s = decoder.decode(&bytes).unwrap();
            assert_eq!((s.key.as_str(), s.probability(), s.value()), ("card-1", Some(0.875), 0.875), "schema id {id}");
            assert_eq!(s.attributes.get("channel").map(String::as_str), (id == 7).then_some("ecom"));
        }
    }

    #[test]
    fn other_subjects_and_garbage_are_classified() {
        let registry = registry();
        let decoder = ScoreDecoder::new(registry).unwrap();
        let mut label = Vec::new();
        write_header(&mut label, 2);
        label.extend([0u8; 8]);
        assert_eq!(decoder.decode(&label).unwrap_err().class, ErrorClass::UnknownSchema);
        assert_eq!(decoder.decode(&[1, 2]).unwrap_err().class, ErrorClass::Malformed);
        let mut truncated = Vec::new();
        write_header(&mut truncated, 9);
        truncated.push(4);
        assert_eq!(decoder.decode(&truncated).unwrap_err().class, ErrorClass::Malformed);
    }

    #[test]
    fn values_stand_for_the_answer() {
        let multi = ModelOutput::MultiClass(MultiClassOutput {
            classes: vec![
                ClassProbability { label: "a".into(), probability: 0.2 },
                ClassProbability { label: "b".into(), probability: 0.5 },
                ClassProbability { label: "c".into(), probability: 0.3 },
            ],
        });
        assert_eq!(multi.value(), 0.5);
        assert_eq!(score(multi).probability(), None);
        assert_eq!(ModelOutput::binary(0.1).value(), 0.1);
    }
}
