//! Tests of the path decoders: the fixtures (an every-type schema and its values, the
//! example events), then one file per thing under test.

mod fixtures;
mod path_decoder;
mod properties;
mod record_decoder;
