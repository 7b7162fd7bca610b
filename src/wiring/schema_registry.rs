//! `[schemas]` in, the schema registry out: weir's compiled-in map, a map file, or a
//! [`ConfluentRegistry`] with weir's subjects registered and the input's latest schema
//! fetched.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::Context;
use weir_schema_registry::{topic_value_subject, Auth, ClientSettings, ConfluentRegistry, Input, Output, SubjectPlan};
use weir_schemas::secret::Secret;
use weir_schemas::wire::{subjects, LocalSchemaRegistry, SchemaRegistry};

use crate::config::WeirConfig;

/// The schema registry the configuration names (or weir's own).
///
/// With `schemas.registry_url`, the first call connects (blocking: registrations and
/// fetches with retries, see [`ConfluentRegistry::connect`]) and later calls with the same
/// registry and subjects get the same client, so that every stage of the process (the
/// scorer, its shadow, the monitor, the learner) shares one cache and the registry is
/// asked once per id. Call it from a blocking context at start-up (`spawn_blocking`) when
/// the registry may be slow to answer.
pub fn schema_registry(config: &WeirConfig) -> anyhow::Result<Arc<dyn SchemaRegistry>> {
    if config.schemas.registry_url.is_some() {
        return Ok(confluent_registry(config)?);
    }
    let registry = match &config.schemas.registry_map {
        Some(path) => LocalSchemaRegistry::from_map_file(path)?,
        None => LocalSchemaRegistry::embedded()?,
    };
    Ok(Arc::new(registry))
}

/// The Confluent registry of `schemas.registry_url`, shared per (url, subjects) within
/// the process. Errors name the registry, the cause, and the setting to fix.
pub fn confluent_registry(config: &WeirConfig) -> anyhow::Result<Arc<ConfluentRegistry>> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<ConfluentRegistry>>>> = OnceLock::new();
    let settings = client_settings(config)?;
    let plan = subject_plan(config)?;
    let key = plan_key(&settings, &plan);
    // Held while connecting, so that stages starting together connect once.
    let mut shared = SHARED.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(registry) = shared.get(&key) {
        return Ok(registry.clone());
    }
    let url = settings.url.clone();
    let registry = Arc::new(
        ConfluentRegistry::connect(settings, &plan).with_context(|| format!("connecting to the schema registry {url}"))?,
    );
    shared.insert(key, registry.clone());
    Ok(registry)
}

/// The registry subjects of this configuration: weir's outputs registered (scores, the
/// shadow scores when a model registry can name a challenger, labels, drift alerts), the
/// input read.
pub fn subject_plan(config: &WeirConfig) -> anyhow::Result<SubjectPlan> {
    let own = LocalSchemaRegistry::embedded()?;
    let names = &config.schemas.subjects;
    let or_topic = |set: &Option<String>, topic: &str| set.clone().unwrap_or_else(|| topic_value_subject(topic));
    let mut score_subjects = vec![or_topic(&names.scores, &config.kafka.topics.scores)];
    if config.scorer.registry.is_some() {
        score_subjects.push(or_topic(&names.shadow_scores, &config.scorer.shadow_topic));
    }
    // Drift alerts whether or not `weir run` runs the monitor: `weir monitor` may.
    let outputs = vec![
        Output { subject: subjects::SCORE.into(), registry_subjects: score_subjects, schema: own.latest(subjects::SCORE)? },
        Output {
            subject: subjects::LABEL.into(),
            registry_subjects: vec![or_topic(&names.labels, &config.kafka.topics.labels)],
            schema: own.latest(subjects::LABEL)?,
        },
        Output {
            subject: subjects::DRIFT_ALERT.into(),
            registry_subjects: vec![or_topic(&names.alerts, &config.monitor.alerts_topic)],
            schema: own.latest(subjects::DRIFT_ALERT)?,
        },
    ];
    let inputs = vec![Input {
        subject: config.input.subject.clone(),
        registry_subject: or_topic(&names.input, &config.kafka.topics.input),
    }];
    Ok(SubjectPlan { outputs, inputs })
}

/// The client's settings, secrets read from their variables or files now.
pub fn client_settings(config: &WeirConfig) -> anyhow::Result<ClientSettings> {
    let s = &config.schemas;
    let url = s.registry_url.as_deref().context("schemas.registry_url is not set")?;
    let mut settings = ClientSettings::new(url)?;
    let basic = secret("schemas.basic_auth_password", &s.basic_auth_password_env, &s.basic_auth_password_file)?;
    let bearer = secret("schemas.bearer_token", &s.bearer_token_env, &s.bearer_token_file)?;
    settings.auth = match (&s.basic_auth_user, basic, bearer) {
        (Some(user), Some(password), None) => Auth::Basic { user: user.clone(), password },
        (None, None, Some(token)) => Auth::Bearer(token),
        (None, None, None) => Auth::None,
        // WeirConfig::problems names these; reached only with an unchecked config.
        _ => anyhow::bail!("schemas: give basic_auth_user with one basic_auth_password_*, or one bearer_token_*, not both"),
    };
    settings.ca_file = s.ca_file.clone();
    settings.request_timeout = Duration::from_millis(s.request_timeout_ms);
    settings.startup_timeout = Duration::from_millis(s.startup_timeout_ms);
    settings.lookup_attempts = s.lookup_attempts;
    settings.lookup_backoff = Duration::from_millis(s.lookup_backoff_ms);
    settings.unknown_id_ttl = Duration::from_millis(s.unknown_id_ttl_ms);
    Ok(settings)
}

/// A secret named by an environment variable or a file (at most one is set: checked).
fn secret(what: &str, env: &Option<String>, file: &Option<PathBuf>) -> anyhow::Result<Option<Secret>> {
    Ok(match (env, file) {
        (Some(var), _) => Some(Secret::from_env(var).with_context(|| format!("{what}_env"))?),
        (None, Some(path)) => Some(Secret::from_file(path).with_context(|| format!("{what}_file"))?),
        (None, None) => None,
    })
}

/// What makes two configurations share a client: the registry, who weir is to it, and
/// the subjects (not the secrets' values: the same variable or file means the same).
fn plan_key(settings: &ClientSettings, plan: &SubjectPlan) -> String {
    let auth = match &settings.auth {
        Auth::None => String::new(),
        Auth::Basic { user, .. } => format!("basic:{user}"),
        Auth::Bearer(_) => "bearer".into(),
    };
    let outputs: Vec<String> = plan.outputs.iter().map(|o| format!("{}={}", o.subject, o.registry_subjects.join("+"))).collect();
    let inputs: Vec<String> = plan.inputs.iter().map(|i| format!("{}={}", i.subject, i.registry_subject)).collect();
    format!("{}|{auth}|{:?}|{}|{}", settings.url, settings.ca_file, outputs.join(","), inputs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_topics_unless_named() {
        let mut config = WeirConfig::with_brokers("x:1");
        config.kafka.topics.input = "payments".into();
        config.kafka.topics.scores = "fraud-scores".into();
        let plan = subject_plan(&config).unwrap();
        assert_eq!(plan.inputs[0].registry_subject, "payments-value");
        assert_eq!(plan.inputs[0].subject, "transaction");
        let by: HashMap<&str, &Vec<String>> = plan.outputs.iter().map(|o| (o.subject.as_str(), &o.registry_subjects)).collect();
        assert_eq!(by["score"], &vec!["fraud-scores-value".to_string()]);
        assert_eq!(by["label"], &vec!["labels-value".to_string()]);
        assert!(by.contains_key("drift-alert"));
        config.schemas.subjects.input = Some("com.acme.Payment".into());
        config.scorer.registry = Some("/models".into());
        let plan = subject_plan(&config).unwrap();
        assert_eq!(plan.inputs[0].registry_subject, "com.acme.Payment");
        assert_eq!(plan.outputs[0].registry_subjects, vec!["fraud-scores-value".to_string(), format!("{}-value", config.scorer.shadow_topic)]);
    }

    #[test]
    fn secrets_come_from_their_variable_or_file_and_errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "pa55-sentinel\n").unwrap();
        let mut config = WeirConfig::with_brokers("x:1");
        config.schemas.registry_url = Some("http://sr:8081".into());
        config.schemas.basic_auth_user = Some("weir".into());
        config.schemas.basic_auth_password_file = Some(path.clone());
        let settings = client_settings(&config).unwrap();
        assert!(matches!(&settings.auth, Auth::Basic { user, password } if user == "weir" && password.expose() == "pa55-sentinel"));
        assert!(!format!("{settings:?}").contains("pa55-sentinel"));
        config.schemas.basic_auth_password_file = None;
        config.schemas.basic_auth_password_env = Some("WEIR_TEST_UNSET_VARIABLE_FOR_SR".into());
        let err = format!("{:#}", client_settings(&config).unwrap_err());
        assert!(err.contains("WEIR_TEST_UNSET_VARIABLE_FOR_SR") && err.contains("basic_auth_password_env"), "{err}");
    }
}
