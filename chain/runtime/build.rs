//! Builds the runtime to WASM (target `wasm32v1-none`, stable Rust) when `std` is on.

fn main() {
    #[cfg(feature = "std")]
    {
        substrate_wasm_builder::WasmBuilder::build_using_defaults();
    }
}
