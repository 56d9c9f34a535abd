//! Whether this process was started by an MPI launcher, and the waiting
//! between polls that keeps idle ranks off the CPU.

use std::time::{Duration, Instant};

/// Variables that a launcher sets in every rank it starts: Open MPI's
/// `mpirun`, a PMIx server (Slurm's `srun --mpi=pmix`, `prterun`), or a
/// PMI-1/PMI-2 server (`srun --mpi=pmi2`, MPICH's Hydra).
pub(crate) const LAUNCH_VARS: [&str; 4] =
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"];

/// The first launcher variable set in this process, if any.
pub(crate) fn launcher_var() -> Option<&'static str> {
    LAUNCH_VARS
        .into_iter()
        .find(|v| std::env::var_os(v).is_some())
}

/// A poll that found nothing waits this long first…
const FIRST_WAIT: Duration = Duration::from_micros(50);
/// …then twice as long each time, up to this…
const BUSY_MAX_WAIT: Duration = Duration::from_millis(1);
/// …and, after this long without a message, up to this.
const IDLE_AFTER: Duration = Duration::from_secs(1);
const IDLE_MAX_WAIT: Duration = Duration::from_millis(4);

/// Exponential backoff between non-blocking polls: Open MPI's blocking
/// receive spins a core at 100%, so a rank waiting for a message probes,
/// and sleeps a little longer each time nothing came (a few microseconds
/// of delay while work flows, about 1% of a core when idle).
#[derive(Debug)]
pub(crate) struct Backoff {
    wait: Duration,
    since: Instant,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            wait: FIRST_WAIT,
            since: Instant::now(),
        }
    }

    /// Something arrived: poll quickly again.
    pub(crate) fn reset(&mut self) {
        self.wait = FIRST_WAIT;
        self.since = Instant::now();
    }

    /// How long to wait before the next poll (growing each call).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let max = if self.since.elapsed() >= IDLE_AFTER {
            IDLE_MAX_WAIT
        } else {
            BUSY_MAX_WAIT
        };
        let wait = self.wait.min(max);
        self.wait = (self.wait * 2).min(max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_to_a_millisecond_and_resets() {
        let mut b = Backoff::new();
        assert_eq!(b.next_wait(), FIRST_WAIT);
        assert_eq!(b.next_wait(), FIRST_WAIT * 2);
        for _ in 0..20 {
            b.next_wait();
        }
        assert_eq!(b.next_wait(), BUSY_MAX_WAIT);
        b.reset();
        assert_eq!(b.next_wait(), FIRST_WAIT);
    }

    #[test]
    fn a_long_idle_wait_grows_further() {
        let mut b = Backoff::new();
        b.since = Instant::now() - IDLE_AFTER;
        for _ in 0..20 {
            b.next_wait();
        }
        assert_eq!(b.next_wait(), IDLE_MAX_WAIT);
    }
}
