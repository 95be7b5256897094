//! HTML from users: `HtmlSanitizer` (feature `html`, `ammonia` with a
//! strict allow-list) and [`escape_html`] (always available) for text that
//! is not HTML at all.

use std::borrow::Cow;
#[cfg(feature = "html")]
use std::collections::{HashMap, HashSet};

#[cfg(feature = "html")]
use crate::{ConfigError, ConfigErrorKind};

#[cfg(feature = "html")]
/// The tags [`HtmlSanitizer::strict`] keeps: text formatting, lists,
/// quotes, code and links. No images (tracking pixels), no tables, no forms.
pub const STRICT_TAGS: &[&str] = &[
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
];

#[cfg(feature = "html")]
/// Elements removed with everything inside them (their text would be
/// script, CSS or a nested document); no policy may allow them.
const REMOVED_WITH_CONTENT: &[&str] = &[
    "script", "style", "iframe", "noscript", "object", "embed", "template", "svg", "math",
    "noembed", "noframes", "xmp", "textarea", "title",
];

#[cfg(feature = "html")]
/// Tags that are never allowed, even by [`HtmlSanitizer::allow_tags`]:
/// those above plus the ones that load or submit things or change how the
/// page is read.
const NEVER_ALLOWED: &[&str] = &[
    "base",
    "frame",
    "frameset",
    "form",
    "input",
    "button",
    "select",
    "option",
    "link",
    "meta",
    "applet",
    "plaintext",
    "img",
    "video",
    "audio",
    "source",
    "picture",
    "html",
    "head",
    "body",
];

#[cfg(feature = "html")]
/// Sanitises user HTML (comments, posts, bios) with `ammonia`, keeping a
/// strict allow-list:
///
/// - tags: [`STRICT_TAGS`]; `script`, `style`, `iframe`, `svg`, `math`,
///   `noscript`, `template` and similar are removed with their content;
///   other tags are dropped and their text kept (escaped);
/// - attributes: only `href` and `title` on `a` — no `style`, `class`,
///   `id` or event handler (`on*`) anywhere;
/// - link schemes: `https`, `http`, `mailto`, written plainly at the start
///   of the value (an `href` holding a control or whitespace character is
///   dropped: URL parsers would silently clean it); relative links are removed
///   (`javascript:`, `data:`, `vbscript:` never pass);
/// - every link gets `rel="noopener noreferrer"` (no `window.opener` for
///   the target page, no `Referer` leak);
/// - comments are stripped.
///
/// ammonia parses with html5ever, the same HTML5 algorithm as browsers, and
/// serialises the tree it kept, so mutation XSS tricks that rely on the
/// sanitiser and the browser parsing differently (`noscript`, `style` or
/// `svg` content re-read as markup) find nothing to mutate. Keep ammonia at
/// 4.1.4 or later (the workspace pins it).
///
/// ```
/// use palisade_validate::HtmlSanitizer;
///
/// let html = HtmlSanitizer::strict();
/// assert_eq!(
///     html.clean(r#"<p onclick="x()">Hi <a href="https://example.com">there</a><script>alert(1)</script></p>"#),
///     r#"<p>Hi <a href="https://example.com" rel="noopener noreferrer">there</a></p>"#
/// );
/// assert_eq!(html.clean(r#"<a href="javascript:alert(1)">x</a>"#), r#"<a rel="noopener noreferrer">x</a>"#);
/// ```
pub struct HtmlSanitizer {
    builder: ammonia::Builder<'static>,
}

#[cfg(feature = "html")]
impl std::fmt::Debug for HtmlSanitizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlSanitizer")
            .field("tags", &self.builder.clone_tags())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "html")]
impl Default for HtmlSanitizer {
    fn default() -> HtmlSanitizer {
        HtmlSanitizer::strict()
    }
}

#[cfg(feature = "html")]
impl HtmlSanitizer {
    /// The strict allow-list described on the type.
    pub fn strict() -> HtmlSanitizer {
        HtmlSanitizer::with_tags(STRICT_TAGS.iter().copied().collect())
    }

    fn with_tags(tags: HashSet<&'static str>) -> HtmlSanitizer {
        let mut builder = ammonia::Builder::empty();
        builder
            .tags(tags)
            .clean_content_tags(REMOVED_WITH_CONTENT.iter().copied().collect())
            .tag_attributes(HashMap::from([("a", HashSet::from(["href", "title"]))]))
            .generic_attributes(HashSet::new())
            .url_schemes(HashSet::from(["https", "http", "mailto"]))
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer"))
            .strip_comments(true)
            .attribute_filter(|_element, attribute, value| {
                if attribute == "href" && !plain_link(value) {
                    None
                } else {
                    Some(value.into())
                }
            });
        HtmlSanitizer { builder }
    }

    /// The strict list plus `tags` (such as `h2`, `h3`, `table`), still
    /// without attributes other than a link's `href` and `title`.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidAllowList`] for a tag that runs script,
    /// loads a resource, submits a form or changes how the page is parsed
    /// (`script`, `style`, `iframe`, `svg`, `img`, `form`, `base`, `meta`, ...),
    /// or a name that is not a lowercase tag name.
    pub fn allow_tags(tags: &[&'static str]) -> Result<HtmlSanitizer, ConfigError> {
        let mut all: HashSet<&'static str> = STRICT_TAGS.iter().copied().collect();
        for tag in tags {
            let well_formed = !tag.is_empty()
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !well_formed || REMOVED_WITH_CONTENT.contains(tag) || NEVER_ALLOWED.contains(tag) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidAllowList,
                    "HtmlSanitizer tags: a lowercase tag name that runs no script, loads nothing and submits nothing",
                ));
            }
            all.insert(tag);
        }
        Ok(HtmlSanitizer::with_tags(all))
    }

    /// The sanitised HTML, safe to insert into a page as HTML.
    ///
    /// The output is a fixed point: sanitising it again gives it back
    /// unchanged. One pass is not always one: removing elements can leave a
    /// tree the HTML parser would build differently (an `a` inside an `a`,
    /// found by the `html_sanitize` fuzz target), and a browser re-parsing
    /// it is what mutation XSS feeds on. So the output is sanitised again
    /// until it no longer changes (in practice one extra pass; at most
    /// [`MAX_PASSES`](Self::MAX_PASSES)).
    pub fn clean(&self, html: &str) -> String {
        let mut out = self.builder.clean(html).to_string();
        for _ in 1..Self::MAX_PASSES {
            let again = self.builder.clean(&out).to_string();
            if again == out {
                break;
            }
            out = again;
        }
        out
    }

    /// The most sanitising passes [`clean`](Self::clean) makes.
    pub const MAX_PASSES: usize = 4;
}

/// Whether an `href` (entities already decoded) is spelled plainly: an
/// allowed scheme at the very start and no control or whitespace character
/// anywhere. URL parsers strip leading controls and drop tabs and newlines
/// (`\u{1e}https:…`, `java\tscript:`), so a value that needs that cleaning
/// is dropped rather than trusted to be read the same way everywhere (found
/// by the `html_sanitize` fuzz target).
#[cfg(feature = "html")]
fn plain_link(value: &str) -> bool {
    let lower = value.get(..7).unwrap_or(value).to_ascii_lowercase();
    (lower.starts_with("https:") || lower.starts_with("http:") || lower.starts_with("mailto:"))
        && !value.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `text` with `&`, `<`, `>`, `"` and `'` as character references: safe in
/// element content and in quoted attribute values. Not for URLs (use
/// [`UrlPolicy`](crate::UrlPolicy)), scripts or CSS. Borrowed when there is
/// nothing to escape.
///
/// ```
/// use palisade_validate::escape_html;
///
/// assert_eq!(escape_html(r#"<img src=x onerror="alert('1')">"#),
///            "&lt;img src=x onerror=&quot;alert(&#x27;1&#x27;)&quot;&gt;");
/// assert_eq!(escape_html("Tom & Jerry"), "Tom &amp; Jerry");
/// ```
pub fn escape_html(text: &str) -> Cow<'_, str> {
    if !text
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(all(test, feature = "html"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn clean(html: &str) -> String {
        HtmlSanitizer::strict().clean(html)
    }

    fn assert_inert(output: &str, payload: &str) {
        let lower = output.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{payload} -> {output}");
        assert!(!lower.contains("javascript:"), "{payload} -> {output}");
        assert!(!lower.contains("<svg"), "{payload} -> {output}");
        assert!(!lower.contains("<img"), "{payload} -> {output}");
        assert!(!lower.contains("<iframe"), "{payload} -> {output}");
        assert!(!lower.contains("<style"), "{payload} -> {output}");
        assert!(!lower.contains("style="), "{payload} -> {output}");
        // No attribute named on*: every attribute left is href, title or rel.
        for (index, _) in lower.match_indices(" on") {
            let rest = lower.get(index + 1..).unwrap_or("");
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(
                !rest.get(name.len()..).unwrap_or("").starts_with('='),
                "{payload} -> {output}"
            );
        }
    }

    #[test]
    fn classic_xss_payloads_are_inert() {
        for payload in [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
            "<img src=x onerror=alert(1)>",
            "<svg onload=alert(1)>",
            "<svg><script>alert(1)</script></svg>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<a href=\"java&#x09;script:alert(1)\">x</a>",
            "<a href=\"&#106;avascript:alert(1)\">x</a>",
            "<a href=\" javascript:alert(1)\">x</a>",
            "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
            "<a href=\"vbscript:msgbox(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<p style=\"background:url(javascript:alert(1))\">x</p>",
            "<body onload=alert(1)>",
            "<details open ontoggle=alert(1)>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
            "<style><img src=x onerror=alert(1)></style>",
            "<svg><style><img src=x onerror=alert(1)></style></svg>",
            "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
            "<template><script>alert(1)</script></template>",
            "<textarea><script>alert(1)</script></textarea>",
            "<!--<img src=x onerror=alert(1)>-->",
            "<p><a href=x onmouseover=alert(1)>x</a></p>",
            "<base href=\"javascript:/\"><a href=\"x\">x</a>",
            "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
        ] {
            let output = clean(payload);
            assert_inert(&output, payload);
            assert_eq!(clean(&output), output, "not idempotent: {payload}");
        }
    }

    #[test]
    fn formatting_and_links_survive_with_rel() {
        assert_eq!(
            clean("<p><strong>a</strong> <em>b</em><br><code>c</code></p>"),
            "<p><strong>a</strong> <em>b</em><br><code>c</code></p>"
        );
        assert_eq!(
            clean(
                r#"<a href="https://example.com/x" title="t" target="_blank" rel="opener">y</a>"#
            ),
            r#"<a href="https://example.com/x" title="t" rel="noopener noreferrer">y</a>"#
        );
        assert_eq!(
            clean(r#"<a href="/relative">y</a>"#),
            r#"<a rel="noopener noreferrer">y</a>"#
        );
        assert_eq!(clean("<div class=x id=y>text</div>"), "text");
    }

    #[test]
    fn hrefs_that_parsers_must_clean_are_dropped() {
        // Parser differential: URL parsers strip a leading C0 control and
        // drop tabs and newlines, so the stored value is not what runs.
        for payload in [
            "<a href=\"\u{1e}https:s/p\">x</a>",
            "<a href=\"https://example.com/\tx\">x</a>",
            "<a href=\" https://example.com/\">x</a>",
            "<a href=\"java\nscript:alert(1)\">x</a>",
        ] {
            assert_eq!(
                clean(payload),
                r#"<a rel="noopener noreferrer">x</a>"#,
                "{payload:?}"
            );
        }
        let regression =
            include_bytes!("../../../fuzz/regressions/html_sanitize/control_prefixed_href");
        assert!(!clean(&String::from_utf8_lossy(regression)).contains("href"));
    }

    #[test]
    fn output_is_a_fixed_point_even_for_nested_anchors() {
        let regression = include_bytes!("../../../fuzz/regressions/html_sanitize/nested_anchors");
        let once = clean(&String::from_utf8_lossy(regression));
        assert_eq!(clean(&once), once);
        assert!(!once.contains("<a rel=\"noopener noreferrer\">&lt;Dl}ere<a"));
    }

    #[test]
    fn dangerous_tags_cannot_be_allowed() {
        assert!(HtmlSanitizer::allow_tags(&["h2", "table", "tr", "td"]).is_ok());
        for bad in [
            "script", "style", "iframe", "svg", "img", "form", "base", "meta", "H2", "",
        ] {
            assert!(HtmlSanitizer::allow_tags(&[bad]).is_err(), "{bad}");
        }
        let headings = HtmlSanitizer::allow_tags(&["h2"]).unwrap();
        assert_eq!(headings.clean("<h2 onclick=x>T</h2>"), "<h2>T</h2>");
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn escape_only() {
        assert!(matches!(escape_html("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_html("<>&\"'"), "&lt;&gt;&amp;&quot;&#x27;");
    }
}
