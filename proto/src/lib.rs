//! Sigil gRPC API (`sigil.v1`), generated at build time from `proto/sigil/v1/*.proto`.
