let mut future = async {
    let buf = [7u8; 16];
    let view = &buf[..4];
    stroll::yield_now().await;
    view.len()
};
let pinned = std::pin::Pin::new(&mut future); // error[E0277]
