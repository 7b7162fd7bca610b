//! Unit tests of the spec-reading parts: ordered forms against the ONNX rule, and the
//! post-transform functions.

use super::build::{ordered_form, Cut, To};
use super::finalize::{logistic, probit};
use super::real::Real;
use crate::trees::attrs::Mode;

/// Runs a branch's ordered form for one `x`: true if it reaches the true child.
fn decide<T: Real>(form: &[Cut<T>], x: T) -> bool {
    let mut i = 0;
    loop {
        let s = &form[i];
        let v = if x.is_nan() && s.nan_le { T::NEG_INFINITY } else { x };
        match if v <= s.threshold { s.le } else { s.gt } {
            To::True => return true,
            To::False => return false,
            To::Next => i += 1,
        }
    }
}

/// onnxruntime's rule, `x MODE t || (track && isnan(x))`, in f64.
fn rule(mode: Mode, x: f64, t: f64, track: bool) -> bool {
    let cmp = match mode {
        Mode::Leq => x <= t,
        Mode::Lt => x < t,
        Mode::Gte => x >= t,
        Mode::Gt => x > t,
        Mode::Eq => x == t,
        Mode::Neq => x != t,
        Mode::Leaf => unreachable!(),
    };
    cmp || (track && x.is_nan())
}

const MODES: [Mode; 6] = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq, Mode::Neq];

#[test]
fn ordered_forms_decide_every_f32_as_the_rule_does_in_f64() {
    for t in [0.1f64, 1.0, -2.5, 0.0, 1e40, -1e40, f64::from(f32::MAX), f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
        let near = |f: f32| [f.next_down().next_down(), f.next_down(), f, f.next_up(), f.next_up().next_up()];
        let mut xs: Vec<f32> = if t.is_nan() { vec![] } else { near(t as f32).to_vec() };
        xs.extend([f32::MAX, -f32::MAX, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, f32::NAN]);
        for x in xs {
            for mode in MODES {
                for track in [false, true] {
                    let form = ordered_form::<f32>(mode, t, track);
                    assert!(!form.is_empty() && form.len() <= 2);
                    let want = rule(mode, f64::from(x), t, track);
                    assert_eq!(decide(&form, x), want, "{mode:?} track {track}: {x} vs {t}");
                }
            }
        }
    }
}

#[test]
fn ordered_forms_decide_every_f64_as_the_rule_does() {
    for t in [0.1f64, 1.0, -2.5, 0.0, 1e300, f64::MAX, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
        let near = |f: f64| [f.next_down().next_down(), f.next_down(), f, f.next_up(), f.next_up().next_up()];
        let mut xs: Vec<f64> = if t.is_nan() { vec![] } else { near(t).to_vec() };
        xs.extend([f64::MAX, -f64::MAX, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, f64::NAN]);
        for x in xs {
            for mode in MODES {
                for track in [false, true] {
                    let form = ordered_form::<f64>(mode, t, track);
                    assert_eq!(decide(&form, x), rule(mode, x, t, track), "{mode:?} track {track}: {x} vs {t}");
                }
            }
        }
    }
}

#[test]
fn logistic_and_probit() {
    assert!((logistic(0.0f32) - 0.5).abs() < 1e-7);
    assert!((logistic(2.0f32) + logistic(-2.0f32) - 1.0).abs() < 1e-7);
    // onnxruntime's probit approximation: within 2e-3 of the true quantile.
    assert!(probit(0.5f32).abs() < 1e-6);
    assert!((probit(0.975f32) - 1.959_964).abs() < 2e-3, "{}", probit(0.975f32));
}
