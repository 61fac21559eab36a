//! `#[derive(TenantScoped)]`: a thin proc-macro shim over `tenancy_core::derive`, where the
//! attributes are read, checked and expanded (the same code the `tenancy` CLI uses).
//!
//! See `docs/derive.md` for the `#[tenancy(...)]` attributes.

use proc_macro::TokenStream;

/// Declares a table of the tenancy model on a struct and expands its tenant-scoped
/// repository (the same API as the generated crate) in a module named after the table.
#[proc_macro_derive(TenantScoped, attributes(tenancy))]
pub fn derive_tenant_scoped(input: TokenStream) -> TokenStream {
    tenancy_core::derive::expand(input.into()).into()
}
