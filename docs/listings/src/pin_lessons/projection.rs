use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pin_project_lite::pin_project! {
    /// Runs `inner` and counts how many polls it took.
    struct Counted<F> {
        #[pin]
        inner: F,
        polls: u32,
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = (F::Output, u32);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project(); // this.inner: Pin<&mut F>, this.polls: &mut u32
        *this.polls += 1;
        let output = ready!(this.inner.poll(cx));
        Poll::Ready((output, *this.polls))
    }
}

let counted = Counted {
    inner: async {
        let buf = [7u8; 16];
        let view = &buf[..4];
        stroll::yield_now().await;
        view.len()
    },
    polls: 0,
};
assert_eq!(stroll::block_on(counted), (4, 2));
