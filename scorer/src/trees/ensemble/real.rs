//! The number type an ensemble compares and sums in.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The number type an ensemble compares and sums in: `f32` for float (and integer)
/// inputs, `f64` for double inputs, as onnxruntime does (its threshold type).
pub trait Real:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;
    const NEG_INFINITY: Self;
    const INFINITY: Self;
    const MAX: Self;
    /// Nearest value.
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn to_f32(self) -> f32;
    /// Largest value <= `t` (`t` not NaN).
    fn down(t: f64) -> Self;
    /// Smallest value >= `t` (`t` not NaN).
    fn up(t: f64) -> Self;
    fn is_nan(self) -> bool;
    fn next_down(self) -> Self;
    fn exp(self) -> Self;
    fn abs(self) -> Self;
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NAN: f32 = f32::NAN;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    const INFINITY: f32 = f32::INFINITY;
    const MAX: f32 = f32::MAX;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn down(t: f64) -> f32 {
        let f = t as f32;
        if f64::from(f) > t { f.next_down() } else { f }
    }
    fn up(t: f64) -> f32 {
        let f = t as f32;
        if f64::from(f) < t { f.next_up() } else { f }
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn next_down(self) -> f32 {
        self.next_down()
    }
    fn exp(self) -> f32 {
        self.exp()
    }
    fn abs(self) -> f32 {
        self.abs()
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NAN: f64 = f64::NAN;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    const INFINITY: f64 = f64::INFINITY;
    const MAX: f64 = f64::MAX;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn down(t: f64) -> f64 {
        t
    }
    fn up(t: f64) -> f64 {
        t
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn next_down(self) -> f64 {
        self.next_down()
    }
    fn exp(self) -> f64 {
        self.exp()
    }
    fn abs(self) -> f64 {
        self.abs()
    }
}
