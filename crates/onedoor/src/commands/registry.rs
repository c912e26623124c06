use std::path::Path;
use std::process::ExitCode;

use onedoor_case::{Registry, RegistryError};

/// Exit status 0 with a summary when the file is valid; 1 with one line per problem when not,
/// so a script (or CI for a registry repository) can gate on it.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match Registry::load(file) {
        Ok(registry) => {
            println!("ok {}: {}", file.display(), registry.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(RegistryError::Invalid { file, problems }) => {
            for problem in &problems {
                println!("{file}: {problem}");
            }
            eprintln!("{file}: {} problem(s); nothing was loaded", problems.len());
            Ok(ExitCode::FAILURE)
        }
        Err(other) => {
            println!("{other}");
            Ok(ExitCode::FAILURE)
        }
    }
}
