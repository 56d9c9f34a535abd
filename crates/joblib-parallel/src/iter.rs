//! The lazy result iterators returned by `Parallel::iter` and
//! `Parallel::iter_unordered`.

use std::collections::VecDeque;

use crate::dispatch::{Engine, Event, Output};
use crate::error::Error;
use crate::task::IntoTask;

/// Results of a parallel call in input order, made by
/// [`Parallel::iter`](crate::Parallel::iter).
///
/// Yields `Ok(result)` for each task, or, at the first failure, the results
/// of every task before it and then the `Err`, after which it ends.
pub struct Iter<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    state: State<I>,
    /// One slot per dispatched batch not yet consumed, from `base_seq` on.
    slots: VecDeque<Option<Slot<Output<I>>>>,
    base_seq: usize,
    /// Completed slots waiting in `slots`.
    buffered: usize,
    current: std::vec::IntoIter<Output<I>>,
    pending_error: Option<Error>,
}

struct Slot<R> {
    results: Vec<R>,
    error: Option<Error>,
}

enum State<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    Running(Box<Engine<I>>),
    Failed(Error),
    Done,
}

impl<I> State<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    fn new(engine: Result<Engine<I>, Error>) -> Self {
        match engine {
            Ok(engine) => State::Running(Box::new(engine)),
            Err(error) => State::Failed(error),
        }
    }

    /// Ends the iteration; an error not yet reported is returned.
    fn end(&mut self) -> Option<Error> {
        match std::mem::replace(self, State::Done) {
            State::Failed(error) => Some(error),
            State::Running(_) | State::Done => None,
        }
    }
}

impl<I> Iter<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    pub(crate) fn new(engine: Result<Engine<I>, Error>) -> Self {
        Iter {
            state: State::new(engine),
            slots: VecDeque::new(),
            base_seq: 0,
            buffered: 0,
            current: Vec::new().into_iter(),
            pending_error: None,
        }
    }

    fn place(&mut self, seq: usize, slot: Slot<Output<I>>) {
        let entry = seq
            .checked_sub(self.base_seq)
            .and_then(|i| self.slots.get_mut(i));
        // A slot already filled (by a timeout) ignores the late outcome.
        if let Some(entry @ None) = entry {
            *entry = Some(slot);
            self.buffered += 1;
        }
    }
}

impl<I> Iterator for Iter<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    type Item = Result<Output<I>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(result) = self.current.next() {
                return Some(Ok(result));
            }
            if let Some(error) = self.pending_error.take() {
                self.state.end();
                return Some(Err(error));
            }
            let engine = match &mut self.state {
                State::Running(engine) => engine,
                State::Failed(_) | State::Done => return self.state.end().map(Err),
            };
            if let Some(Some(_)) = self.slots.front() {
                if let Some(Some(slot)) = self.slots.pop_front() {
                    self.base_seq += 1;
                    self.buffered -= 1;
                    self.current = slot.results.into_iter();
                    if let Some(error) = slot.error {
                        self.pending_error = Some(error);
                    }
                }
                continue;
            }
            if let Err(error) = engine.fill(self.buffered) {
                engine.stop(0);
                self.state = State::Failed(error);
                continue;
            }
            while self.base_seq + self.slots.len() < engine.dispatched_batches() {
                self.slots.push_back(None);
            }
            if self.slots.is_empty() {
                // Everything dispatched was consumed and nothing more comes.
                let input_error = engine.take_input_error();
                if input_error.is_none() {
                    engine.finished();
                }
                self.state = State::Done;
                return input_error.map(Err);
            }
            match engine.wait() {
                Some(Event::Done(outcome)) => {
                    if let Some(error) = &outcome.error {
                        // Earlier tasks still run; later ones never start.
                        engine.stop(error.index().unwrap_or(0));
                    }
                    let seq = outcome.seq;
                    self.place(
                        seq,
                        Slot {
                            results: outcome.results,
                            error: outcome.error,
                        },
                    );
                }
                Some(Event::TimedOut { seq, error }) => {
                    engine.stop(error.index().unwrap_or(0));
                    self.place(
                        seq,
                        Slot {
                            results: Vec::new(),
                            error: Some(error),
                        },
                    );
                }
                None => {
                    // Nothing in flight yet slots are pending: cannot
                    // happen, but never spin on it.
                    self.state = State::Done;
                    return None;
                }
            }
        }
    }
}

/// Results of a parallel call in completion order, made by
/// [`Parallel::iter_unordered`](crate::Parallel::iter_unordered).
///
/// Every result is yielded exactly once; at the first failure the error is
/// yielded and the iterator ends.
pub struct IterUnordered<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    state: State<I>,
    current: std::vec::IntoIter<Output<I>>,
    pending_error: Option<Error>,
}

impl<I> IterUnordered<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    pub(crate) fn new(engine: Result<Engine<I>, Error>) -> Self {
        IterUnordered {
            state: State::new(engine),
            current: Vec::new().into_iter(),
            pending_error: None,
        }
    }
}

impl<I> Iterator for IterUnordered<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    type Item = Result<Output<I>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(result) = self.current.next() {
                return Some(Ok(result));
            }
            if let Some(error) = self.pending_error.take() {
                self.state.end();
                return Some(Err(error));
            }
            let engine = match &mut self.state {
                State::Running(engine) => engine,
                State::Failed(_) | State::Done => return self.state.end().map(Err),
            };
            if let Err(error) = engine.fill(0) {
                engine.stop(0);
                self.state = State::Failed(error);
                continue;
            }
            match engine.wait() {
                Some(Event::Done(outcome)) => {
                    if outcome.error.is_some() {
                        engine.stop(0);
                    }
                    self.current = outcome.results.into_iter();
                    self.pending_error = outcome.error;
                }
                Some(Event::TimedOut { error, .. }) => {
                    engine.stop(0);
                    self.pending_error = Some(error);
                }
                None => {
                    let input_error = engine.take_input_error();
                    if input_error.is_none() {
                        engine.finished();
                    }
                    self.state = State::Done;
                    return input_error.map(Err);
                }
            }
        }
    }
}
