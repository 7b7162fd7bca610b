"""Golden-file scripts: expected outputs computed independently of weir's Rust code, for its tests."""
