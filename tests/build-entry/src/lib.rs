//! A crate that uses `tenancy-build` the way an application would: `build.rs` writes the
//! repositories into `OUT_DIR`, and this file includes them into a module.

/// The repositories `build.rs` generated from `policies/*.tenancy`.
pub mod repos {
    include!(concat!(env!("OUT_DIR"), "/tenancy.rs"));
}
