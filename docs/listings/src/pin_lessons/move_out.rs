let pinned = Box::pin(async {
    let buf = [7u8; 16];
    let view = &buf[..4];
    stroll::yield_now().await;
    view.len()
});
let moved_out = *pinned; // error[E0507]: cannot move out of dereference of `Pin<Box<...>>`
