//! Which nesting level the current thread runs at, so that a `Parallel` call
//! made inside a task does not oversubscribe the machine.

use std::cell::Cell;

thread_local! {
    /// (nesting level, number of workers of the enclosing call).
    static CONTEXT: Cell<(usize, usize)> = const { Cell::new((0, 1)) };
}

/// The nesting level of the current thread: 0 outside any parallel task, 1
/// inside a task of a top-level call, and so on.
pub fn nesting_level() -> usize {
    CONTEXT.with(|c| c.get().0)
}

/// The number of workers of the call whose task is running on this thread
/// (1 outside any task).
pub(crate) fn enclosing_workers() -> usize {
    CONTEXT.with(|c| c.get().1)
}

/// Restores the previous context when dropped.
pub(crate) struct TaskGuard {
    previous: (usize, usize),
}

/// Marks the current thread as running a task at `level`, for a call with
/// `workers` workers, until the guard is dropped.
pub(crate) fn enter_task(level: usize, workers: usize) -> TaskGuard {
    let previous = CONTEXT.with(|c| c.replace((level, workers)));
    TaskGuard { previous }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(nesting_level(), 0);
        {
            let _a = enter_task(1, 4);
            assert_eq!((nesting_level(), enclosing_workers()), (1, 4));
            {
                let _b = enter_task(2, 2);
                assert_eq!(nesting_level(), 2);
            }
            assert_eq!((nesting_level(), enclosing_workers()), (1, 4));
        }
        assert_eq!((nesting_level(), enclosing_workers()), (0, 1));
    }
}
