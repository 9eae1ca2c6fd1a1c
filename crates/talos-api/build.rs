//! Compiles `proto/machine.proto` with protox (pure Rust: no `protoc` needed at build time).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/machine.proto");
    let fds = protox::compile(["proto/machine.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
