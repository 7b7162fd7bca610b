//! Labels learned per second and join throughput, next to River's `learn_one` rate
//! measured in the same run on the same rows (River's Phishing, `tests/data/phishing.csv`).
//!
//! `cargo run --release -p weir-online-learner --example learn_rate`
//! (River from `$WEIR_PYTHON`, default `~/.cache/weir/venv/bin/python`.)

use std::time::Instant;

use weir_online_learner::config::{FtrlConfig, JoinConfig, LearnerConfig};
use weir_online_learner::join::{Join, JoinCounters, PendingScore};
use weir_online_learner::learner::{Input, Learner, Position};
use weir_online_learner::model::OnlineModel;
use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};

const REPS: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = format!("{}/../tests/data/phishing.csv", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap_or_default().split(',').map(String::from).collect();
    let names = names[..names.len() - 1].to_vec();
    let rows: Vec<(Vec<f64>, bool)> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
            let y = v[v.len() - 1] == 1.0;
            (v[..v.len() - 1].to_vec(), y)
        })
        .collect();
    let n = rows.len() * REPS;

    // 1. The FTRL step alone (scaler + one fit_with), as River's learn_one is.
    let mut model = OnlineModel::new(names.clone(), &FtrlConfig::default())?;
    let start = Instant::now();
    for _ in 0..REPS {
        for (x, y) in &rows {
            model.learn(x, *y)?;
        }
    }
    let learn_rate = n as f64 / start.elapsed().as_secs_f64();

    // 2. The join alone: a score in, its label in, pair out.
    let mut join = Join::new(JoinConfig::default(), 0, JoinCounters::default());
    let start = Instant::now();
    let mut joined = 0;
    for r in 0..REPS {
        for (i, (x, y)) in rows.iter().enumerate() {
            let id = format!("{r}-{i}");
            let t = (r * rows.len() + i) as i64;
            join.on_score(&id, PendingScore { event_time: t, model_version: "v1".into(), score: 0.5, features: x.clone() });
            joined += join.on_label(Label { event_id: id, card_id: "c".into(), is_fraud: *y, event_time: t, label_time: t }).is_some() as usize;
        }
    }
    let join_rate = joined as f64 / start.elapsed().as_secs_f64();

    // 3. The whole engine per label: fence, join, test-then-train, evaluation, snapshot
    //    of the checkpoint every 500 labels (no Redis round trip).
    let mut learner = Learner::restore(LearnerConfig::default(), None, vec![], vec![], vec![], vec![])?;
    let mut inputs = Vec::with_capacity(n * 2);
    for r in 0..REPS {
        for (i, (x, y)) in rows.iter().enumerate() {
            let k = r * rows.len() + i;
            let id = format!("{k}");
            let t = k as i64;
            inputs.push((Position { topic: "s".into(), partition: 0, offset: t }, Input::Score(Score {
                event_id: id.clone(), key: "c".into(), event_time: t, model_name: "m".into(), model_version: "v1".into(),
                output: ModelOutput::binary(0.5), decision: "review".into(),
                features: names.iter().zip(x).map(|(n, v)| FeatureValue { name: n.clone(), value: *v }).collect(),
                reasons: vec![], scored_at: t, attributes: Default::default(),
            })));
            inputs.push((Position { topic: "l".into(), partition: 0, offset: t }, Input::Label(Label {
                event_id: id, card_id: "c".into(), is_fraud: *y, event_time: t, label_time: t,
            })));
        }
    }
    let start = Instant::now();
    let mut learned = 0;
    let mut it = inputs.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<_> = it.by_ref().take(1000).collect();
        learned += learner.apply(batch)?.learned;
    }
    let engine_rate = learned as f64 / start.elapsed().as_secs_f64();

    // 4. River, same rows, same run.
    let python = std::env::var("WEIR_PYTHON").unwrap_or_else(|_| {
        format!("{}/.cache/weir/venv/bin/python", std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
    });
    let script = format!(
        "import csv,time\nfrom river import linear_model, preprocessing\n\
         r=list(csv.reader(open({path:?})))\nh=r[0][:-1]\nrows=[({{k:float(v) for k,v in zip(h,x[:-1])}}, x[-1]=='1') for x in r[1:]]\n\
         m=preprocessing.StandardScaler()|linear_model.LogisticRegression()\nt=time.perf_counter()\n\
         for _ in range({REPS}):\n    for x,y in rows: m.learn_one(x,y)\n\
         print(len(rows)*{REPS}/(time.perf_counter()-t))\n"
    );
    let river = std::process::Command::new(&python).args(["-c", &script]).output();
    let river_rate = match &river {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok(),
        _ => None,
    };

    println!("Phishing rows x {REPS} = {n} labels");
    println!("  weir FTRL learn (scaler + fit_with)      {learn_rate:>12.0} labels/s");
    println!("  weir join (score in, label in, pair out) {join_rate:>12.0} pairs/s");
    println!("  weir engine (fence+join+eval+learn)      {engine_rate:>12.0} labels/s");
    match river_rate {
        Some(r) => println!(
            "  River StandardScaler|LogisticRegression learn_one {r:>8.0} labels/s  (weir FTRL / River = {:.1}x, engine / River = {:.1}x)",
            learn_rate / r,
            engine_rate / r
        ),
        None => println!("  River: not measured ({python} failed: {:?})", river.map(|o| String::from_utf8_lossy(&o.stderr).to_string())),
    }
    Ok(())
}
