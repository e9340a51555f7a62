//! `quilt-shim`: Quilt's per-container supervisor and exec helper.
#![deny(unsafe_code)]

fn main() {
    quilt_runtime::shim::main()
}
