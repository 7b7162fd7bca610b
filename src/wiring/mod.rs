//! Configuration in, components out (ripgrep's `lowargs` → `hiargs`): the one place that
//! turns a checked [`WeirConfig`] into the objects the stages run with — the schema
//! registry (`schema_registry.rs`: the compiled-in map, a map file, or a Confluent
//! registry client), the model, the feature plan and input plan, the online store, the registry
//! watcher. Stages and commands take these; none of them builds its own.

mod input_plan;
mod schema_registry;

use anyhow::Context;
use weir_features::definitions::FeatureDefinitions;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_scorer::live::{Start, StartSource, Target, Watcher};
use weir_scorer::model::LoadedModel;

use crate::config::WeirConfig;

pub use input_plan::{CompiledRules, InputPlan};
pub use schema_registry::{client_settings, confluent_registry, schema_registry, subject_plan};

/// Loads the configured model — the registry's champion, a model directory, or the
/// compiled-in baseline — validated against the configured feature set. A refused
/// champion falls back as [`load_model_at_start`] says (logged as an error).
pub fn load_model(config: &WeirConfig) -> anyhow::Result<LoadedModel> {
    Ok(load_model_at_start(config)?.model)
}

/// [`load_model`], with what was refused on the way. With `scorer.registry`, a champion
/// that fails validation does not stop the process (a restart would fail the same way,
/// forever): weir serves the most recent earlier champion that passes (the registry's
/// history), else the compiled-in baseline if it fits the configured features, and logs
/// each refusal at error level; only a registry with no champion pointer, or nothing at
/// all fit to serve, is an error. `model_dir` and the baseline have nothing to fall back
/// to: a refusal there is an error.
pub fn load_model_at_start(config: &WeirConfig) -> anyhow::Result<Start> {
    let names = feature_names(config);
    let sizes = &config.scorer.plan_batch_sizes;
    let start = match (&config.scorer.registry, &config.scorer.model_dir) {
        (Some(root), _) => Watcher::load_at_start(root, &config.scorer.model_name, &names, sizes)?,
        (None, Some(dir)) => Start { model: LoadedModel::load_dir(dir, &names, sizes)?, source: StartSource::Champion, refused: vec![] },
        (None, None) => Start { model: weir_scorer::baseline::load(&names, sizes)?, source: StartSource::Baseline, refused: vec![] },
    };
    for (version, error) in &start.refused {
        tracing::error!(pointer = "champion", %version, reason = error.kind(), "model version refused at start-up: {error}");
    }
    match &start.source {
        StartSource::EarlierChampion(version) if !start.refused.is_empty() => tracing::error!(
            serving = %version,
            "the champion is not fit to serve; serving the earlier champion {version} until the pointer moves"
        ),
        StartSource::Baseline if config.scorer.registry.is_some() => tracing::error!(
            serving = %start.model.version(),
            "no champion in the registry is fit to serve; serving the compiled-in baseline until the pointer moves"
        ),
        _ => {}
    }
    Ok(start)
}

/// The feature plan: which entities, windows and transforms make each event's feature
/// vector, checked.
pub fn feature_definitions(config: &WeirConfig) -> anyhow::Result<FeatureDefinitions> {
    Ok(FeatureDefinitions::new(&config.features)?)
}

/// The feature names weir computes under this configuration, in model input order.
/// Empty when the feature configuration has problems (`WeirConfig::check` reports them).
pub fn feature_names(config: &WeirConfig) -> Vec<String> {
    FeatureDefinitions::new(&config.features).map(|d| d.names().to_vec()).unwrap_or_default()
}

/// What the pipeline reads of each input event under this configuration.
pub fn input_plan(config: &WeirConfig, definitions: &FeatureDefinitions) -> InputPlan {
    InputPlan::new(&config.input, &config.validation, definitions.paths(), &definitions.key_paths())
}

/// Per entity kind, in the definitions' order: is it keyed like the input (its key path
/// is `input.primary_key`, by which the input topic is expected to be partitioned), so
/// that one input partition holds all of an entity's events and its state can live with
/// the partition?
pub fn local_kinds(config: &WeirConfig, definitions: &FeatureDefinitions) -> Vec<bool> {
    definitions.key_paths().iter().map(|path| *path == config.input.primary_key).collect()
}

/// The Redis online store the configuration names, with weir's card key space.
pub async fn connect_redis_store(config: &WeirConfig) -> anyhow::Result<RedisStore> {
    let redis = config.redis.as_ref().context("a [redis] section (or WEIR_REDIS_URL) is needed")?;
    let definitions = feature_definitions(config)?;
    let (keys, spec, ttl) = (store_keys(config), definitions.engine_spec().clone(), config.features.ttl_ms());
    if redis.cluster {
        let seeds = redis.seeds();
        RedisStore::connect_cluster(&seeds, keys, spec, ttl)
            .await
            .with_context(|| format!("connecting to the redis cluster at {seeds:?}"))
            .map(|s| s.with_state_cache(redis.state_cache_entities))
    } else {
        RedisStore::connect(&redis.url, keys, spec, ttl)
            .await
            .with_context(|| format!("connecting to redis at {}", redis.url))
            .map(|s| s.with_state_cache(redis.state_cache_entities))
    }
}

/// Where the entities' features live in Redis under this configuration (an entity `card`'s at
/// `features_key("card", id)`).
pub fn store_keys(config: &WeirConfig) -> KeySpace {
    KeySpace::new(&config.features.key_prefix)
}

/// A watcher of the registry pointer `target` names (champion or challenger), for this
/// configuration's model and features; `None` without `scorer.registry`. Run it with
/// `crate::stages::registry_watch`.
pub fn registry_watcher(config: &WeirConfig, target: Target) -> Option<Watcher> {
    let root = config.scorer.registry.clone()?;
    Some(Watcher::new(root, config.scorer.model_name.clone(), feature_names(config), config.scorer.plan_batch_sizes.clone(), target))
}
