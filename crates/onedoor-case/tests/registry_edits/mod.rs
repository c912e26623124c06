//! Breaking one thing in a valid registry text and reading the refusal.

use onedoor_case::Registry;

/// Loads `base` with the first `from` replaced by `to` and returns the error text, which must
/// name the file.
pub fn refused(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "test edit {from:?} does not apply");
    let text = base.replacen(from, to, 1);
    match Registry::from_toml(&text, "broken.toml") {
        Ok(_) => panic!("registry with {to:?} for {from:?} was accepted"),
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains("broken.toml"),
                "error does not name the file: {message}"
            );
            message
        }
    }
}
