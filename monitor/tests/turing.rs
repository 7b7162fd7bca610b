//! weir's ADWIN and Page–Hinkley on the Turing change-point series that River ships in its
//! wheel (`river/drift/datasets`), against River's own detectors on the same values
//! (tools/golden/turing_changepoints.py → golden/turing.json): the detections must be at the
//! same indices. Prints both next to the human annotations (`--nocapture`).

use std::collections::BTreeMap;

use serde::Deserialize;
use weir_monitor::detectors::{Adwin, DriftDetector, PageHinkley, PageHinkleyConfig};

#[derive(Deserialize)]
struct Golden {
    river_version: String,
    datasets: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    n: usize,
    annotations: BTreeMap<String, Vec<usize>>,
    values: Vec<f64>,
    river: BTreeMap<String, Vec<usize>>,
}

fn detections(mut d: impl DriftDetector, values: &[f64]) -> Vec<usize> {
    values.iter().enumerate().filter_map(|(i, &x)| d.update(x).then_some(i)).collect()
}

#[test]
fn weir_detectors_match_river_on_the_turing_series() {
    let text = include_str!("golden/turing.json");
    let golden: Golden = serde_json::from_str(text).unwrap();
    assert_eq!(golden.datasets.len(), 7, "the seven series River ships");
    println!("Turing change-point series (River {}), detection indices:", golden.river_version);
    let mut total = 0;
    for s in &golden.datasets {
        assert_eq!(s.values.len(), s.n);
        let ours: BTreeMap<&str, Vec<usize>> = BTreeMap::from([
            ("adwin", detections(Adwin::default(), &s.values)),
            ("page_hinkley", detections(PageHinkley::default(), &s.values)),
            (
                "page_hinkley_t1",
                detections(PageHinkley::new(PageHinkleyConfig { threshold: 1.0, ..Default::default() }).unwrap(), &s.values),
            ),
        ]);
        let mut annotated: Vec<usize> = s.annotations.values().flatten().copied().collect();
        annotated.sort();
        annotated.dedup();
        println!("{} (n = {}), annotated change points (any annotator): {:?}", s.name, s.n, annotated);
        for (detector, river) in &s.river {
            let weir = &ours[detector.as_str()];
            println!("  {detector:<16} weir {weir:?}\n  {:<16} river {river:?}", "");
            assert_eq!(weir, river, "{} / {detector}", s.name);
            total += weir.len();
        }
    }
    assert!(total > 50, "the comparison is not vacuous: {total} detections");
}
