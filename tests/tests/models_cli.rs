//! `weir models list | promote | rollback | history`, the real binary on a registry:
//! promote validates first (a corrupt version is refused and the champion stays), the
//! history records each change, rollback walks back.

use std::process::Command;

use weir_schemas::registry::ModelRegistry;
use weir_tests::models::{publish_as, shipped};
use weir_tests::weir_bin;

fn weir(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(weir_bin()?).args(args).env("WEIR_LOG", "warn").output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

#[test]
fn promote_validates_and_rollback_walks_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("registry");
    publish_as(&root, "fraud", "v1", &shipped("baseline"), |_, _| {})?;
    publish_as(&root, "fraud", "v2", &shipped("mlp"), |_, _| {})?;
    publish_as(&root, "fraud", "corrupt", &shipped("baseline"), |_, onnx| onnx[99] ^= 1)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!("[kafka]\nbrokers = \"127.0.0.1:9\"\n[scorer]\nregistry = {:?}\n", root.display().to_string()),
    )?;
    let c = config.to_str().unwrap_or_default();
    let registry = ModelRegistry::open(&root)?;

    let (ok, out) = weir(&["models", "promote", "--config", c, "v1"])?;
    assert!(ok, "{out}");
    assert!(out.contains("champion (none) -> v1"), "{out}");
    let (ok, out) = weir(&["models", "promote", "--config", c, "v2"])?;
    assert!(ok && out.contains("champion v1 -> v2"), "{out}");

    let (ok, out) = weir(&["models", "promote", "--config", c, "corrupt"])?;
    assert!(!ok, "a corrupt version was promoted: {out}");
    assert!(out.contains("not fit to serve") && out.contains("checksum mismatch"), "{out}");
    assert_eq!(registry.champion("fraud")?.as_deref(), Some("v2"));

    let (ok, out) = weir(&["models", "list", "--config", c])?;
    assert!(ok, "{out}");
    let marked: Vec<&str> = out.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(marked.len(), 1, "{out}");
    assert!(marked[0].contains("v2") && marked[0].contains("mlp"), "{out}");
    assert!(out.contains("corrupt") && out.contains("v1"), "{out}");

    let (ok, out) = weir(&["models", "rollback", "--config", c])?;
    assert!(ok && out.contains("champion v2 -> v1 (rollback)"), "{out}");
    assert_eq!(registry.champion("fraud")?.as_deref(), Some("v1"));
    let (ok, out) = weir(&["models", "rollback", "--config", c])?;
    assert!(!ok && out.contains("nothing to roll back to"), "{out}");

    let (ok, out) = weir(&["models", "history", "--config", c])?;
    assert!(ok, "{out}");
    let lines: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let actions: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l["action"].as_str().unwrap_or("").to_string(), l["to"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        actions,
        [("promote", "v1"), ("promote", "v2"), ("rollback", "v1")].map(|(a, t)| (a.to_string(), t.to_string()))
    );
    assert!(lines.iter().all(|l| l["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))));
    Ok(())
}
