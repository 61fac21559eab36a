//! PUBLIC surfaces outside the model that would let one tenant's requests reach another's
//! data (docs/security.md, "Authority inside the database"): today the large objects.

use super::ident::ident;
use super::section_heading;
use crate::model::Model;

/// The condition on `pg_catalog.pg_proc AS p` that selects the large-object functions the app
/// role must not execute: `lo_*`, `loread`, `lowrite`, but not the server-side file functions
/// `lo_import`/`lo_export`, which only superusers hold. The migration revokes exactly these,
/// and `tenancy audit` (TA033) reports exactly these.
pub const LARGE_OBJECT_FUNCTIONS: &str = "p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace\n\
     \x20     AND (p.proname LIKE 'lo\\_%' OR p.proname IN ('loread', 'lowrite'))\n\
     \x20     -- server-side file access stays with superusers (never granted by default)\n\
     \x20     AND p.proname NOT IN ('lo_import', 'lo_export')";

/// Revokes the large-object functions (`lo_*`, `loread`, `lowrite`; not the server-side file
/// functions `lo_import`/`lo_export`, which only superusers hold) from PUBLIC and grants them to
/// the owner role. Every request of every tenant runs as the same login role, which
/// would own every large object: an unscoped store where one tenant lists, reads and
/// overwrites another's objects. Only a superuser can change the ACL of `pg_catalog`
/// functions; migrated by another role, the block warns and changes nothing, and
/// `tenancy audit` reports the surface (TA033).
pub(super) fn large_objects_section(model: &Model) -> String {
    let owner = ident(&model.settings.owner_role);
    let mut out = section_heading(
        "Large objects",
        Some(
            "The app role gets no large-object function: every tenant's requests run as one\n\
             login role, which would own every large object. Database-wide (function ACLs are\n\
             per database); the owner role keeps them. Needs a superuser.",
        ),
    );
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 f pg_catalog.regprocedure;\n\
         BEGIN\n\
         \x20 IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = CURRENT_USER) THEN\n\
         \x20   RAISE WARNING 'tenancy: large-object functions stay executable by PUBLIC: migrate as a superuser (tenancy audit reports TA033)';\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 FOR f IN\n\
         \x20   SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc AS p\n\
         \x20   WHERE {LARGE_OBJECT_FUNCTIONS}\n\
         \x20   ORDER BY 1\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);\n\
         \x20   EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO {owner}', f);\n\
         \x20 END LOOP;\n\
         END\n\
         $$;\n"
    ));
    out
}
