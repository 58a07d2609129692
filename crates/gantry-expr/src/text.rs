//! Case-insensitive text rules: how strings compare and how object keys match.
//!
//! GitHub compares strings "ordinal ignore case": both sides are upper-cased (except the dotless
//! `ı`, which .NET's invariant upper-casing leaves alone) and then compared code unit by code
//! unit in UTF-16, the way JavaScript's `<` does. Object keys match when their lower-case forms
//! are equal. Each rule has an ASCII fast path because nearly all real keys and values are ASCII.

use std::borrow::Cow;
use std::cmp::Ordering;

/// Upper-cases `text` like GitHub's `toUpperSpecial`: full Unicode upper-casing except `ı`.
pub(crate) fn upper_special(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_lowercase()) {
            return Cow::Owned(text.to_ascii_uppercase());
        }
        return Cow::Borrowed(text);
    }
    let mut upper = String::with_capacity(text.len());
    for c in text.chars() {
        if c == 'ı' {
            upper.push(c);
        } else {
            upper.extend(c.to_uppercase());
        }
    }
    Cow::Owned(upper)
}

/// String equality as `==` sees it.
pub(crate) fn equals_ignore_case(left: &str, right: &str) -> bool {
    if left.is_ascii() && right.is_ascii() {
        return left.eq_ignore_ascii_case(right);
    }
    upper_special(left) == upper_special(right)
}

/// String ordering as `<` and `>` see it.
pub(crate) fn compare_ignore_case(left: &str, right: &str) -> Ordering {
    let left = upper_special(left);
    let right = upper_special(right);
    if left.is_ascii() && right.is_ascii() {
        return left.as_bytes().cmp(right.as_bytes());
    }
    // UTF-16 order differs from code point order for characters above U+FFFF, which sort
    // before U+E000..U+FFFF in UTF-16; JavaScript and .NET both use UTF-16 order.
    left.encode_utf16().cmp(right.encode_utf16())
}

/// The lower-case form under which object keys are matched.
pub(crate) fn fold_key(key: &str) -> Cow<'_, str> {
    if key.is_ascii() {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(key.to_ascii_lowercase());
        }
        return Cow::Borrowed(key);
    }
    Cow::Owned(key.to_lowercase())
}

/// Whether two object keys name the same property.
pub(crate) fn keys_match(left: &str, right: &str) -> bool {
    if left.is_ascii() && right.is_ascii() {
        return left.eq_ignore_ascii_case(right);
    }
    fold_key(left) == fold_key(right)
}

/// The length of `text` in UTF-16 code units, the unit GitHub's positions and sizes count in.
pub(crate) fn utf16_len(text: &str) -> usize {
    if text.is_ascii() {
        return text.len();
    }
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_all_but_dotless_i() {
        assert_eq!(upper_special("abc"), "ABC");
        assert_eq!(upper_special("straße"), "STRASSE");
        assert_eq!(upper_special("ıi"), "ıI");
    }

    #[test]
    fn compares_in_utf16_order() {
        assert_eq!(compare_ignore_case("a", "B"), Ordering::Less);
        assert_eq!(compare_ignore_case("abc", "ABC"), Ordering::Equal);
        // U+1F600 is a surrogate pair (0xD83D ...) and so sorts before U+FF5E in UTF-16.
        assert_eq!(compare_ignore_case("😀", "～"), Ordering::Less);
    }

    #[test]
    fn matches_keys_case_insensitively() {
        assert!(keys_match("Foo", "fOO"));
        assert!(keys_match("ÄBC", "äbc"));
        assert!(!keys_match("foo", "foo "));
    }
}
