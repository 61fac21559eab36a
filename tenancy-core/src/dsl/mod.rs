//! The `.tenancy` policy language: lexer, parser, validator and diagnostics.
