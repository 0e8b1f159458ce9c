//! Compiles every `.proto` under `proto/mgpass` with protox (no protoc binary needed) and keeps the
//! encoded descriptor set, because only the encoded bytes retain the `google.api.http` and
//! `mgpass.options.v1` method options that the transcoder and the auth layer read at run time.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read proto dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut files = Vec::new();
    collect(&root.join("mgpass"), &mut files);
    files.sort();
    // The error model's protos are compiled too, so the gateway can render `google.rpc.Status`
    // details as JSON.
    files.push(root.join("vendor/google/rpc/error_details.proto"));
    files.push(root.join("vendor/google/rpc/status.proto"));
    println!("cargo:rerun-if-changed=mgpass");
    println!("cargo:rerun-if-changed=vendor");

    let includes = [root.join("vendor"), root.clone()];
    let mut compiler = protox::Compiler::new(&includes)?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    let encoded = compiler.encode_file_descriptor_set();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("mgpass_descriptor.bin"), &encoded)?;

    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
