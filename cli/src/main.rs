#![deny(unsafe_code)]
#[allow(dead_code)]
mod args;
fn main() {}
