//! Retrying a registry call: exponential backoff within a time budget or a number of
//! tries, only for errors that may go away ([`Error::is_transient`], or what the caller
//! says is worth another try).

use std::time::{Duration, Instant};

use crate::error::Error;

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Until this much time has passed (start-up: the registry may be starting too).
    Time(Duration),
    /// This many tries in all (per event: bounded, so a bad id cannot stall a partition).
    Tries(u32),
}

/// Calls `op` until it succeeds, fails with an error `retry` refuses, or the budget is
/// spent; waits `first_wait`, doubling up to 5 s, between tries. An
/// [`Error::Unreachable`] returned at the end says how many tries over how long.
pub fn with_backoff<T>(
    budget: Budget,
    first_wait: Duration,
    retry: impl Fn(&Error) -> bool,
    mut op: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let started = Instant::now();
    let mut wait = first_wait;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let error = match op() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let more = retry(&error)
            && match budget {
                Budget::Tries(n) => tries < n,
                Budget::Time(limit) => started.elapsed() + wait < limit,
            };
        if !more {
            return Err(match error {
                Error::Unreachable { url, last, .. } => Error::Unreachable { url, attempts: tries, elapsed: started.elapsed(), last },
                other => other,
            });
        }
        tracing::debug!(tries, wait_ms = wait.as_millis() as u64, error = %error, "schema registry call failed; retrying");
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Error {
        Error::Unreachable { url: "http://sr".into(), attempts: 1, elapsed: Duration::ZERO, last: "connection refused".into() }
    }

    #[test]
    fn tries_are_counted_and_reported() {
        let mut calls = 0;
        let err = with_backoff::<()>(Budget::Tries(3), Duration::from_millis(1), Error::is_transient, || {
            calls += 1;
            Err(down())
        })
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(matches!(err, Error::Unreachable { attempts: 3, .. }), "{err}");
        assert!(err.to_string().contains("3 attempt(s)"), "{err}");
    }

    #[test]
    fn a_refused_error_is_not_retried_and_success_stops() {
        let mut calls = 0;
        let err = with_backoff::<()>(Budget::Tries(5), Duration::from_millis(1), Error::is_transient, || {
            calls += 1;
            Err(Error::Unauthorized { url: "http://sr".into(), status: 401, what: "x".into() })
        })
        .unwrap_err();
        assert_eq!(calls, 1, "{err}");
        let mut calls = 0;
        let v = with_backoff(Budget::Time(Duration::from_secs(5)), Duration::from_millis(1), Error::is_transient, || {
            calls += 1;
            if calls < 3 { Err(down()) } else { Ok(calls) }
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn a_time_budget_ends() {
        let started = Instant::now();
        let err = with_backoff::<()>(Budget::Time(Duration::from_millis(150)), Duration::from_millis(20), Error::is_transient, || Err(down()))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, Error::Unreachable { attempts, .. } if attempts >= 2), "{err}");
    }
}
