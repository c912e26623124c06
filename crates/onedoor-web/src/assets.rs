//! The page's static files, embedded in the binary: government networks may be cut off from
//! the internet, so nothing is loaded from a CDN or a font service, and a tracker binary needs
//! no files beside it.
//!
//! Links carry a fingerprint of the file (`/assets/app.css?v=…`), so the files can be cached
//! for a year: a new build changes the link, not the meaning of an old one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use super::i18n::Msg;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "noto-sans-lao-lao-400.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../assets/fonts/noto-sans-lao-lao-400-normal.woff2"),
    },
    Asset {
        name: "noto-sans-lao-lao-700.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../assets/fonts/noto-sans-lao-lao-700-normal.woff2"),
    },
    Asset {
        name: "noto-sans-lao-latin-400.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../assets/fonts/noto-sans-lao-latin-400-normal.woff2"),
    },
    Asset {
        name: "noto-sans-lao-latin-700.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../assets/fonts/noto-sans-lao-latin-700-normal.woff2"),
    },
    Asset {
        name: "OFL.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/fonts/OFL.txt"),
    },
];

/// A year: the longest cache lifetime browsers honour; safe because links are fingerprinted.
const LONG_CACHE: &str = "public, max-age=31536000, immutable";

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// FNV-1a of the file, as short hex: stable across builds of the same bytes.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{:012x}", hash >> 16)
}

static STYLESHEET_URL: LazyLock<String> = LazyLock::new(|| url("app.css"));
static SCRIPT_URL: LazyLock<String> = LazyLock::new(|| url("app.js"));

fn url(name: &str) -> String {
    let version = find(name).map_or_else(String::new, |asset| fingerprint(asset.bytes));
    format!("/assets/{name}?v={version}")
}

pub fn stylesheet_url() -> &'static str {
    &STYLESHEET_URL
}

pub fn script_url() -> &'static str {
    &SCRIPT_URL
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Result<Response, WebError> {
    let Some(asset) = find(&name) else {
        return Err(WebError::not_found(Msg::ErrorPageNotFound));
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(LONG_CACHE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_fingerprinted() {
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
        }
        assert!(stylesheet_url().starts_with("/assets/app.css?v="));
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
    }
}
