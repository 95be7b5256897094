//! Arbitrary text escaped for SQL `LIKE`: a small LIKE matcher (the SQL
//! standard's `%`, `_` and `ESCAPE` rules) shows the pattern matches the
//! literal text and none of a few near misses; the contains / starts-with /
//! ends-with patterns match what they say.

use palisade_validate::LikeEscape;

/// The escape characters tried; the first input byte picks one.
const ESCAPES: [char; 6] = ['\\', '!', '#', '^', '~', 'é'];
/// Longest text checked (the matcher is quadratic).
const MAX_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Literal(char),
    One,
    Many,
}

fn compile(pattern: &str, escape: char) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let token = if c == escape {
            // SQL: an escape must be followed by a character.
            Token::Literal(
                chars
                    .next()
                    .expect("an escape character is followed by one"),
            )
        } else if c == '%' {
            Token::Many
        } else if c == '_' {
            Token::One
        } else {
            Token::Literal(c)
        };
        tokens.push(token);
    }
    tokens
}

/// `text LIKE pattern ESCAPE escape`, by dynamic programming.
fn like(pattern: &str, escape: char, text: &str) -> bool {
    let tokens = compile(pattern, escape);
    let text: Vec<char> = text.chars().collect();
    // matched[j]: tokens so far match text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            match token {
                Token::Many => next[j] = matched[j] || (j > 0 && next[j - 1]),
                Token::One => next[j] = j > 0 && matched[j - 1],
                Token::Literal(c) => next[j] = j > 0 && matched[j - 1] && text[j - 1] == c,
            }
        }
        matched = next;
    }
    matched[text.len()]
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let escape = ESCAPES[usize::from(first) % ESCAPES.len()];
    let like_escape = LikeEscape::with_escape(escape).expect("a usable escape character");
    let text: String = String::from_utf8_lossy(rest)
        .chars()
        .take(MAX_CHARS)
        .collect();
    let pattern = like_escape.escape(&text);
    assert!(like(&pattern, escape, &text), "the literal does not match");

    let mut near_misses = vec![
        format!("{text}x"),
        format!("x{text}"),
        format!("{text}%"),
        String::new(),
    ];
    let mut chars: Vec<char> = text.chars().collect();
    if chars.pop().is_some() {
        near_misses.push(chars.iter().collect());
    }
    for (index, c) in text.chars().enumerate() {
        if c == '%' || c == '_' || c == escape {
            let mut changed: Vec<char> = text.chars().collect();
            changed[index] = if c == 'a' { 'b' } else { 'a' };
            near_misses.push(changed.into_iter().collect());
        }
    }
    for other in near_misses {
        if other != text {
            assert!(
                !like(&pattern, escape, &other),
                "the pattern matched another text"
            );
        }
    }
    assert!(like(
        &like_escape.contains(&text),
        escape,
        &format!("ab{text}cd")
    ));
    assert!(like(
        &like_escape.starts_with(&text),
        escape,
        &format!("{text}zz")
    ));
    assert!(like(
        &like_escape.ends_with(&text),
        escape,
        &format!("zz{text}")
    ));
    if let Some(first) = text.chars().next() {
        let other = if first == 'y' { 'q' } else { 'y' };
        assert!(!like(
            &like_escape.starts_with(&text),
            escape,
            &format!("{other}{text}")
        ));
    }
}
