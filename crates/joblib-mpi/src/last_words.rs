//! Rank 0's last words: when a rank dies, Open MPI ends the job by sending
//! SIGTERM to every rank. Rank 0 then prints which batches each worker
//! rank held, so that the user knows which tasks to suspect, and ends as
//! the signal would have ended it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

use signal_hook::consts::SIGTERM;
use signal_hook::iterator::Signals;

/// A batch on a worker rank: its call and the positions of its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OnRank {
    pub(crate) call_id: u64,
    pub(crate) first: usize,
    pub(crate) len: usize,
}

/// Per worker rank (rank r at r - 1), its batches not answered yet.
static BOARD: OnceLock<Mutex<Vec<VecDeque<OnRank>>>> = OnceLock::new();

fn board() -> Option<std::sync::MutexGuard<'static, Vec<VecDeque<OnRank>>>> {
    BOARD
        .get()
        .map(|b| b.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Keeps the board for `workers` ranks and starts the thread that waits for
/// SIGTERM. Without it (the thread cannot start), the job still ends on
/// SIGTERM, silently.
pub(crate) fn install(workers: usize) {
    let _ = BOARD.set(Mutex::new((0..workers).map(|_| VecDeque::new()).collect()));
    let Ok(mut signals) = Signals::new([SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("joblib-mpi-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let text = board().map(|b| describe(signal, &b)).unwrap_or_default();
                eprintln!("{text}");
                // End as the signal would have ended the process.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
}

/// A batch was sent to worker rank `slot + 1`.
pub(crate) fn sent(slot: usize, batch: OnRank) {
    if let Some(mut b) = board()
        && let Some(q) = b.get_mut(slot)
    {
        q.push_back(batch);
    }
}

/// Worker rank `slot + 1` answered its oldest batch.
pub(crate) fn answered(slot: usize) {
    if let Some(mut b) = board()
        && let Some(q) = b.get_mut(slot)
    {
        q.pop_front();
    }
}

/// The message printed on `signal`.
fn describe(signal: i32, board: &[VecDeque<OnRank>]) -> String {
    let mut text = format!(
        "joblib-mpi: the job is ending (signal {signal}, sent by the launcher when a rank died \
         or the job was cancelled);"
    );
    let busy: Vec<(usize, &VecDeque<OnRank>)> = board
        .iter()
        .enumerate()
        .filter(|(_, q)| !q.is_empty())
        .collect();
    if busy.is_empty() {
        text.push_str(" no worker rank held a batch");
        return text;
    }
    text.push_str(" batches on worker ranks then:");
    for (slot, q) in busy {
        let _ = write!(text, "\n  rank {}:", slot + 1);
        for b in q {
            let _ = write!(
                text,
                " tasks {}..{} of call {};",
                b.first,
                b.first + b.len,
                b.call_id
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_ranks_and_tasks() {
        let on = |call_id, first, len| OnRank {
            call_id,
            first,
            len,
        };
        let board = vec![
            VecDeque::from([on(3, 40, 8), on(3, 56, 8)]),
            VecDeque::new(),
            VecDeque::from([on(4, 0, 1)]),
        ];
        let text = describe(15, &board);
        assert!(
            text.starts_with("joblib-mpi: the job is ending (signal 15"),
            "{text}"
        );
        assert!(
            text.contains("\n  rank 1: tasks 40..48 of call 3; tasks 56..64 of call 3;"),
            "{text}"
        );
        assert!(text.contains("\n  rank 3: tasks 0..1 of call 4;"), "{text}");
        assert!(!text.contains("rank 2"), "{text}");
        let idle = describe(15, &[VecDeque::new()]);
        assert!(idle.ends_with("no worker rank held a batch"), "{idle}");
    }
}
