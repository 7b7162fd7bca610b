//! This process's CPU time, for events per CPU-second: `getrusage(RUSAGE_SELF)`, user plus
//! system, over every thread of the process (the broker and Redis run in processes of
//! their own and are not in it).

use std::time::Duration;

/// User plus system CPU time this process has used so far.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes the struct it is given and nothing else; a zeroed rusage is
    // a valid value of it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work done in between shows up (CPU time never goes backwards, and spinning for a
    /// while costs some): the sign and the clock are what this checks, not a duration.
    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu();
        let mut x = 0u64;
        while process_cpu() == before {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
            }
        }
        std::hint::black_box(x);
        assert!(process_cpu() > before);
    }
}
