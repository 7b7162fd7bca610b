//! Configuration in, components out (ripgrep's `lowargs` → `hiargs`): the one place that
//! turns a checked [`WeirConfig`] into the objects the stages run with — the schema
//! registry, the model, the feature plan and input plan, the online store, the registry
//! watcher. Stages and commands take these; none of them builds its own.

mod input_plan;

use std::sync::Arc;

use anyhow::Context;
use weir_features::definitions::FeatureDefinitions;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_schemas::wire::{LocalSchemaRegistry, SchemaRegistry};
use weir_scorer::live::{Pointer, Target, Watcher};
use weir_scorer::model::LoadedModel;

use crate::config::WeirConfig;

pub use input_plan::{CompiledRules, InputPlan};

/// The schema registry the configuration names (or weir's own).
pub fn schema_registry(config: &WeirConfig) -> anyhow::Result<Arc<dyn SchemaRegistry>> {
    let registry = match &config.schemas.registry_map {
        Some(path) => LocalSchemaRegistry::from_map_file(path)?,
        None => LocalSchemaRegistry::embedded()?,
    };
    Ok(Arc::new(registry))
}

/// Loads the configured model — the registry's champion, a model directory, or the
/// compiled-in baseline — validated against the configured feature set.
pub fn load_model(config: &WeirConfig) -> anyhow::Result<LoadedModel> {
    let names = feature_names(config);
    let sizes = &config.scorer.plan_batch_sizes;
    Ok(match (&config.scorer.registry, &config.scorer.model_dir) {
        (Some(root), _) => Watcher::load_pointed(root, &config.scorer.model_name, Pointer::Champion, &names, sizes)?,
        (None, Some(dir)) => LoadedModel::load_dir(dir, &names, sizes)?,
        (None, None) => weir_scorer::baseline::load(&names, sizes)?,
    })
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
