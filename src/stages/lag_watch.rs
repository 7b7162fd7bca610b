//! Consumer lag, measured for the scoring group and the monitor's group every
//! `monitor.lag_interval_secs` into `weir_consumer_lag{group}`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;
use weir_ingest::lag::consumer_lag;
use weir_monitor::metrics as m;

use crate::config::WeirConfig;

/// Measures the scoring group's and the monitor group's lag every
/// `monitor.lag_interval_secs` into `weir_consumer_lag{group}` until `shutdown`.
pub fn spawn_lag_watch(config: &WeirConfig, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let brokers = config.kafka.brokers.clone();
    let t = &config.kafka.topics;
    let groups = vec![
        (config.kafka.group_id.clone(), vec![t.input.clone()]),
        (config.monitor.group_id(&config.kafka.group_id), vec![t.scores.clone(), t.labels.clone()]),
    ];
    let every = Duration::from_secs(config.monitor.lag_interval_secs.max(1));
    tokio::spawn(async move {
        loop {
            for (group, topics) in &groups {
                let (b, g, ts) = (brokers.clone(), group.clone(), topics.clone());
                let lag = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = ts.iter().map(String::as_str).collect();
                    consumer_lag(&b, &g, &refs, Duration::from_secs(5))
                })
                .await;
                match lag {
                    Ok(Ok(lag)) => metrics::gauge!(m::CONSUMER_LAG, "group" => group.clone()).set(lag as f64),
                    Ok(Err(e)) => warn!(%group, error = %e, "measuring consumer lag"),
                    Err(e) => warn!(%group, error = %e, "lag task"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

