//! Tests of the wire format: the typed codec, and the local registry's map files.

mod codec;
mod local_registry;
