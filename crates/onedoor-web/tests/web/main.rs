//! The staff web page against a running tracker: a real nats-server, events written through the
//! real write path (`CaseLog::execute`), the real `Tracker::start` and `WebPage::serve`. Plain HTTP tests check what a
//! browser is sent (escaping, language, error pages, server-sent events); browser tests drive
//! Debian's headless Chromium through chromedriver and save screenshots under
//! `target/screenshots/`.

mod app;
mod browser;
mod hardening;
mod http;
mod login;
mod offices;
mod signin;
mod slow;
