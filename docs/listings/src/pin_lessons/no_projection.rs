use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

struct Counted<F> {
    inner: F,
    polls: u32,
}

impl<F: Future> Future for Counted<F> {
    type Output = (F::Output, u32);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // error[E0594]: cannot assign to data in dereference of `Pin<&mut Counted<F>>`
        self.polls += 1;
        todo!()
    }
}
