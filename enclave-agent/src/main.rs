//! `sigil-agent` daemon entry point.

fn main() {}
