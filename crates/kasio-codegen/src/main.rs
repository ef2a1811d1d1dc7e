//! `cargo run -p kasio-codegen [-- --check]`: regenerates kasio-proto's messages, or checks
//! that the committed ones are current.

use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = kasio_codegen::workspace_root();
    let result = kasio_codegen::spec_dirs().and_then(|dirs| {
        let files = kasio_codegen::generate(&dirs, &root.join(kasio_codegen::ERROR_CODES))?;
        let out = root.join(kasio_codegen::OUT_DIR);
        if check {
            let differ = kasio_codegen::diff(&out, &files)?;
            if !differ.is_empty() {
                return Err(format!("generated code is stale: {}", differ.join(", ")));
            }
            Ok(format!("{} generated files are current", files.len()))
        } else {
            kasio_codegen::write(&out, &files)?;
            Ok(format!("wrote {} files to {}", files.len(), out.display()))
        }
    });
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kasio-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
