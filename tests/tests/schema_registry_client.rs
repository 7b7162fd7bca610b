//! weir's Schema Registry client against the harness's registry over real HTTP, without
//! Kafka: one fetch per id however many threads miss it at once, the start-up check of
//! the configured field paths against the input subject's latest schema, and the
//! refusal of an output schema the registry finds incompatible.

use std::sync::{Arc, Barrier};

use weir_schema_registry::{ClientSettings, ConfluentRegistry, Input, Output, SubjectPlan};
use weir_schemas::paths::RecordDecoder;
use weir_schemas::record::FieldValue;
use weir_schemas::wire::{subjects, write_header, LocalSchemaRegistry, SchemaRegistry};
use weir_tests::schema_registry::{RegistryServer, TlsFront};

const PAYMENT_V1: &str = r#"{"type": "record", "name": "Payment", "namespace": "com.acme", "fields": [
  {"name": "event_id", "type": "string"}, {"name": "amount", "type": "double"}]}"#;
const PAYMENT_V2: &str = r#"{"type": "record", "name": "Payment", "namespace": "com.acme", "fields": [
  {"name": "event_id", "type": "string"}, {"name": "amount", "type": "double"},
  {"name": "promo_code", "type": ["null", "string"], "default": null}]}"#;

fn plan() -> SubjectPlan {
    let own = LocalSchemaRegistry::embedded().unwrap();
    SubjectPlan {
        outputs: vec![Output {
            subject: subjects::SCORE.into(),
            registry_subjects: vec!["scores-value".into(), "scores.shadow-value".into()],
            schema: own.latest(subjects::SCORE).unwrap(),
        }],
        inputs: vec![Input { subject: "payment".into(), registry_subject: "payments-value".into() }],
    }
}

#[test]
fn concurrent_misses_of_one_id_are_one_fetch_and_hits_ask_nothing() -> anyhow::Result<()> {
    let server = RegistryServer::start()?;
    let v1 = server.register("payments-value", PAYMENT_V1)?;
    let registry = Arc::new(ConfluentRegistry::connect(ClientSettings::new(&server.url)?, &plan())?);
    // weir's score schema: one id under both subjects, and what the encoder frames with.
    let score = registry.latest(subjects::SCORE)?;
    assert_eq!(server.versions("scores-value"), vec![score.id]);
    assert_eq!(server.versions("scores.shadow-value"), vec![score.id]);
    assert_eq!(registry.latest("payment")?.id, v1);

    let v2 = server.register("payments-value", PAYMENT_V2)?;
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (registry, barrier) = (registry.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                registry.by_id(v2).map(|s| (s.id, s.subject.clone()))
            })
        })
        .collect();
    for h in handles {
        let got = h.join().map_err(|_| anyhow::anyhow!("thread panicked"))?;
        assert_eq!(got, Ok((v2, "payment".to_string())), "the registry subject maps back to weir's");
    }
    for _ in 0..1000 {
        registry.by_id(v2)?;
        registry.by_id(v1)?;
    }
    assert_eq!(server.count(&format!("GET /schemas/ids/{v2}")), 1, "{:?}", server.requests());
    assert_eq!(server.count(&format!("GET /schemas/ids/{v1}")), 0);
    assert_eq!(registry.fetches(), 1);

    // The path decoder learns v2 through the same client, by the id in the message.
    let decoder = RecordDecoder::new(registry.clone(), "payment", &["amount", "promo_code"])?;
    let mut framed = Vec::new();
    write_header(&mut framed, v2);
    framed.extend_from_slice(&[2, b'e', 0, 0, 0, 0, 0, 0, 0x24, 0x40, 2, 2, b'P']); // "e", 10.0, "P"
    let record = decoder.decode(&framed)?;
    assert_eq!(record.values, [FieldValue::Float(10.0), FieldValue::Str("P".into())]);
    assert_eq!(server.count(&format!("GET /schemas/ids/{v2}")), 1);
    Ok(())
}

#[test]
fn a_configured_path_the_input_latest_schema_lacks_is_named_at_start() -> anyhow::Result<()> {
    let server = RegistryServer::start()?;
    server.register("payments-value", PAYMENT_V1)?;
    let registry: Arc<dyn SchemaRegistry> = Arc::new(ConfluentRegistry::connect(ClientSettings::new(&server.url)?, &plan())?);
    let err = RecordDecoder::new(registry, "payment", &["amount", "merchant.mcc"]).unwrap_err().to_string();
    assert!(err.contains("\"merchant.mcc\"") && err.contains("has this field"), "{err}");
    Ok(())
}

#[test]
fn an_input_subject_with_no_schema_and_an_incompatible_output_are_start_up_errors() -> anyhow::Result<()> {
    let server = RegistryServer::start()?;
    let err = ConfluentRegistry::connect(ClientSettings::new(&server.url)?, &plan()).unwrap_err().to_string();
    assert!(err.contains("input subject payments-value has no schema in the registry"), "{err}");

    // A registry where someone else's record is under weir's scores subject: weir's
    // cannot read it.
    let server = RegistryServer::start()?;
    server.register("payments-value", PAYMENT_V1)?;
    server.register("scores-value", r#"{"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}"#)?;
    let err = ConfluentRegistry::connect(ClientSettings::new(&server.url)?, &plan()).unwrap_err().to_string();
    assert!(err.contains("cannot be registered under subject scores-value") && err.contains("incompatible"), "{err}");
    Ok(())
}

#[test]
fn an_unknown_id_is_an_unknown_schema_event_error_after_bounded_tries() -> anyhow::Result<()> {
    let server = RegistryServer::start()?;
    server.register("payments-value", PAYMENT_V1)?;
    let mut settings = ClientSettings::new(&server.url)?;
    settings.lookup_attempts = 2;
    settings.lookup_backoff = std::time::Duration::from_millis(5);
    let registry = ConfluentRegistry::connect(settings, &plan())?;
    for _ in 0..5 {
        let err = registry.by_id(4242).unwrap_err();
        assert_eq!(err.class, weir_schemas::ErrorClass::UnknownSchema);
        assert!(err.message.contains("schema id 4242 is not in the schema registry"), "{err}");
    }
    assert_eq!(server.count("GET /schemas/ids/4242"), 2, "two tries, then remembered");
    Ok(())
}

#[test]
fn https_with_a_private_ca_from_ca_file() -> anyhow::Result<()> {
    let server = RegistryServer::start()?;
    server.register("payments-value", PAYMENT_V1)?;
    let front = TlsFront::start(&server)?;
    let mut settings = ClientSettings::new(&front.url)?;
    settings.ca_file = Some(front.ca_file.clone());
    let registry = ConfluentRegistry::connect(settings, &plan())?;
    assert_eq!(registry.latest("payment")?.text, PAYMENT_V1);

    // Without the CA, the certificate is refused, by name, without retrying for long.
    let mut settings = ClientSettings::new(&front.url)?;
    settings.startup_timeout = std::time::Duration::from_secs(20);
    let started = std::time::Instant::now();
    let err = ConfluentRegistry::connect(settings, &plan()).unwrap_err().to_string();
    eprintln!("{err}");
    assert!(err.contains("certificate") && err.contains("schemas.ca_file"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "retried a certificate error: {:?}", started.elapsed());
    Ok(())
}
