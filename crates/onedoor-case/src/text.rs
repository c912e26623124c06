//! Which characters caller text may hold, and how text is shown on a terminal.
//!
//! Text written into a case is read later by other ministries' officers, in terminals and web
//! pages. A control character (an ANSI escape sequence, a carriage return) can rewrite what a
//! terminal shows; a bidi override (U+202E) can make `invoice.exe` look like `exe.eciovni`. So
//! identifiers take none of them, and free text takes only newline and tab. Text already on
//! the bus from before these rules is escaped when printed ([`escape`]).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The bidi embedding, override and isolate controls: they reorder the text after them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// C0 controls, DEL, C1 controls and bidi controls: what no identifier may hold.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// A character the rules refuse, and where it is (counted in characters from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("holds the control character {} at character {at}", escape_char(*found))]
pub struct ForbiddenChar {
    pub found: char,
    pub at: usize,
}

fn first_where(text: &str, refuse: impl Fn(char) -> bool) -> Result<(), ForbiddenChar> {
    match text.chars().enumerate().find(|(_, c)| refuse(*c)) {
        Some((at, found)) => Err(ForbiddenChar { found, at }),
        None => Ok(()),
    }
}

/// Identifiers (actor, citizen reference, idempotency key, document name…): no control
/// character of any kind, no bidi control.
pub fn check_identifier(text: &str) -> Result<(), ForbiddenChar> {
    first_where(text, is_forbidden)
}

/// Free text (summary, instructions, notes…): newline and tab are kept for layout; every other
/// control is refused rather than stripped, because the text is signed as written and a
/// silent change would make the stored event differ from what the caller sent.
pub fn check_free_text(text: &str) -> Result<(), ForbiddenChar> {
    first_where(text, |c| c != '\n' && c != '\t' && is_forbidden(c))
}

fn escape_char(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\r' => "\\r".into(),
        '\0'..='\u{7f}' => format!("\\x{:02x}", u32::from(c)),
        _ => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// `text` safe to print on a terminal: every control and bidi character, newline and tab
/// included, becomes a visible escape (`\x1b`, `\u{202e}`, `\n`), so a stored value can
/// neither move the cursor nor fake a line of output. Borrows when nothing needs escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_forbidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_forbidden(c) {
            out.push_str(&escape_char(c));
        } else {
            let _ = out.write_char(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_refuse_every_control_and_bidi_character() {
        for bad in ['\0', '\n', '\t', '\r', '\x1b', '\x7f', '\u{85}', '\u{9b}'] {
            assert!(check_identifier(&format!("ab{bad}")).is_err(), "{bad:?}");
        }
        for bad in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            let err = check_identifier(&format!("ab{bad}")).expect_err("bidi refused");
            assert_eq!(err.at, 2);
        }
        assert!(check_identifier("ທ້າວ ສົມພອນ officer-7").is_ok());
    }

    #[test]
    fn free_text_keeps_newline_and_tab_only() {
        assert!(check_free_text("line one\n\tline two ພາສາລາວ").is_ok());
        for bad in ['\0', '\r', '\x1b', '\x7f', '\u{85}', '\u{202e}', '\u{2067}'] {
            assert!(check_free_text(&format!("x{bad}y")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_shows_controls_and_keeps_the_rest() {
        assert_eq!(
            escape("a\x1b[31mred\u{202e}txt.exe\nnext"),
            "a\\x1b[31mred\\u{202e}txt.exe\\nnext"
        );
        assert_eq!(escape("\u{85}\x7f\0"), "\\u{85}\\x7f\\x00");
        assert!(matches!(escape("ພາສາລາວ plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_error_names_the_character_and_its_place() {
        let err = check_free_text("ok\u{202e}").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "holds the control character \\u{202e} at character 2"
        );
    }
}
