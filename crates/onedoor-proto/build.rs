//! Compiles the onedoor v1 contract (`proto/onedoor/v1/*.proto`) into Rust
//! with protox, a pure-Rust protobuf compiler, so no system `protoc` is needed.
//!
//! Also writes the encoded `FileDescriptorSet` to `OUT_DIR` for gRPC server
//! reflection: `compile_fds` does not write one itself.

use std::path::{Path, PathBuf};

use prost::Message as _;

/// The proto tree's root, relative to this crate; imports are resolved from it.
const PROTO_ROOT: &str = "../../proto";
/// The package directory under the root: every `.proto` in it is compiled.
const PACKAGE_DIR: &str = "onedoor/v1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let files = proto_files(Path::new(PROTO_ROOT), PACKAGE_DIR)?;
    // The set holds these files, their imports (google/protobuf/timestamp.proto,
    // bundled with protox) and their comments (source_code_info).
    let fds = protox::compile(&files, [PROTO_ROOT])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("onedoor_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

/// The `.proto` files in `root/dir`, as paths relative to `root`, sorted so the
/// output does not depend on directory order.
fn proto_files(root: &Path, dir: &str) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join(dir))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".proto") {
            files.push(format!("{dir}/{name}"));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(std::io::Error::other(format!(
            "no .proto files in {}",
            root.join(dir).display()
        )));
    }
    Ok(files)
}
