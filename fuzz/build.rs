//! With `ROCKSDB_LIB_DIR` set (a librocksdb.a the workspace build already compiled; see
//! fuzz/services), librocksdb-sys links that library but not the C++ runtime it needs.
fn main() {
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_SERVICES").is_some()
        && std::env::var_os("ROCKSDB_LIB_DIR").is_some()
    {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
}
