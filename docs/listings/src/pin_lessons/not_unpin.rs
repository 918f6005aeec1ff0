fn assert_unpin<T: Unpin>(_: &T) {}

let future = async {
    let buf = [7u8; 16];
    let view = &buf[..4]; // points into the future, once the future holds `buf`
    stroll::yield_now().await; // ...and the borrow lives across this `.await`
    view.len()
};
assert_unpin(&future); // error[E0277]: ... cannot be unpinned
