//! The frame every page shares: `<html lang>`, the navigation, the language switch, and the
//! friendly error page. maud escapes every interpolated value, so user text (summaries,
//! citizen references, reasons) is always shown as text.

use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::csrf;
use super::i18n::{Lang, Msg};

/// Which navigation entry the page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Search,
    Overdue,
    Stuck,
    Workload,
    SignIns,
    None,
}

/// What the frame around a page needs to know.
pub struct Chrome {
    pub lang: Lang,
    /// The page's own path and query: where the language switch returns.
    pub back: String,
    /// Who is signed in, as shown in the header (with a sign-out button); `None` without
    /// accounts.
    pub user: Option<String>,
    /// Whether to offer the supervisors' pages (workload) in the navigation.
    pub supervisor_pages: bool,
    /// Whether to show the navigation at all (not on the sign-in page, where it only leads
    /// back to it).
    pub nav: bool,
}

/// A whole page.
pub fn page(chrome: &Chrome, title: &str, section: Section, body: Markup) -> Markup {
    let lang = chrome.lang;
    let back = chrome.back.as_str();
    let mut nav = vec![
        (Section::Search, "/", Msg::NavSearch),
        (Section::Overdue, "/overdue", Msg::NavOverdue),
        (Section::Stuck, "/stuck", Msg::NavStuck),
    ];
    if chrome.supervisor_pages {
        nav.push((Section::Workload, "/workload", Msg::NavWorkload));
        if chrome.user.is_some() {
            // Only with accounts is there a sign-in to delay.
            nav.push((Section::SignIns, "/sign-ins", Msg::NavSignIns));
        }
    }
    let other = match lang {
        Lang::En => Lang::Lo,
        Lang::Lo => Lang::En,
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (title) " · " (lang.t(Msg::AppTitle)) }
                link rel="stylesheet" href=(assets::stylesheet_url());
                script src=(assets::script_url()) defer {}
            }
            body {
                a.skip href="#main" { (lang.t(Msg::SkipToContent)) }
                header.top {
                    a.brand href="/" { (lang.t(Msg::AppTitle)) }
                    @if chrome.nav {
                    nav aria-label=(lang.t(Msg::AppTitle)) {
                        ul {
                            @for (entry, href, label) in nav {
                                li {
                                    @if entry == section {
                                        a href=(href) aria-current="page" { (lang.t(label)) }
                                    } @else {
                                        a href=(href) { (lang.t(label)) }
                                    }
                                }
                            }
                        }
                    }
                    }
                    @if let Some(user) = &chrome.user {
                        form.user method="post" action="/logout" {
                            (csrf::field())
                            span #signed-in { (user) }
                            " "
                            button #sign-out type="submit" { (lang.t(Msg::SignOut)) }
                        }
                    }
                    // One control: it offers the other language, named in that language.
                    form.lang method="post" action="/lang" {
                        (csrf::field())
                        input type="hidden" name="lang" value=(other.code());
                        input type="hidden" name="back" value=(back);
                        button #lang-switch type="submit" lang=(other.code())
                            title=(lang.t(Msg::Language)) {
                            (other.own_name())
                        }
                    }
                }
                main #main tabindex="-1" {
                    (body)
                }
            }
        }
    }
}

/// The page for a refused or failed request: a title, what to do, and a way back.
pub fn error_page(lang: Lang, title: Msg, message: Msg) -> Markup {
    let body = html! {
        section.error {
            h1 { (lang.t(title)) }
            p #error-message { (lang.t(message)) }
            p { a href="/" { (lang.t(Msg::BackToSearch)) } }
        }
    };
    let chrome = Chrome {
        lang,
        back: "/".into(),
        user: None,
        supervisor_pages: true,
        nav: true,
    };
    page(&chrome, lang.t(title), Section::None, body)
}
