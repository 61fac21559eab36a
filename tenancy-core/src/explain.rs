//! Plain-text explanation of a model for reviewers (`tenancy explain`).
