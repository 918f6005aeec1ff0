let make = || async {
    let buf = [7u8; 16];
    let view = &buf[..4];
    stroll::yield_now().await;
    view.len()
};
let mut a = std::pin::pin!(make());
let mut b = std::pin::pin!(make());
std::mem::swap(a.as_mut().get_mut(), b.as_mut().get_mut()); // error[E0277]: get_mut needs Unpin
