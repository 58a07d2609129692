//! Tests of the filter module as a whole: the examples of GitHub's filter pattern cheat sheet,
//! ordered evaluation, path filters, and property tests of the pattern translation.

use proptest::prelude::*;

use super::*;

fn parse_all(patterns: &[&str]) -> Vec<FilterPattern> {
    patterns
        .iter()
        .map(|pattern| FilterPattern::parse(pattern).unwrap())
        .collect()
}

/// Checks that the ordered list `patterns` includes every value of `included` and none of
/// `excluded`.
fn check(patterns: &[&str], included: &[&str], excluded: &[&str]) {
    let parsed = parse_all(patterns);
    for value in included {
        assert!(
            matches_filters(&parsed, value),
            "{patterns:?} should include {value:?}"
        );
    }
    for value in excluded {
        assert!(
            !matches_filters(&parsed, value),
            "{patterns:?} should exclude {value:?}"
        );
    }
}

/// The "Patterns to match branches and tags" table of GitHub's cheat sheet; the matches are
/// GitHub's, the non-matches are ours.
#[test]
fn cheat_sheet_branches_and_tags() {
    check(
        &["feature/*"],
        &["feature/my-branch", "feature/your-branch"],
        &["feature", "feature/a/b", "features/x", "my/feature/x"],
    );
    check(
        &["feature/**"],
        &[
            "feature/beta-a/my-branch",
            "feature/your-branch",
            "feature/mona/the/octocat",
        ],
        &["feature", "features/x", "main"],
    );
    check(
        &["main", "releases/mona-the-octocat"],
        &["main", "releases/mona-the-octocat"],
        &["mainline", "a/main", "releases/mona", "Main"],
    );
    check(&["*"], &["main", "releases"], &["releases/v1", "feature/x"]);
    check(&["**"], &["all-the-branches", "every/tag"], &[]);
    check(
        &["*feature"],
        &["mona-feature", "feature", "ver-10-feature"],
        &["feature-x", "a/feature"],
    );
    check(&["v2*"], &["v2", "v2.0", "v2.9"], &["v1", "v2/x", "xv2"]);
    check(
        &["v[12].[0-9]+.[0-9]+"],
        &["v1.10.1", "v2.0.0"],
        &["v3.0.0", "v1.0", "v1..1", "v1.a.1", "v12.0.0"],
    );
}

/// The "Patterns to match file paths" table of GitHub's cheat sheet.
#[test]
fn cheat_sheet_paths() {
    check(&["*"], &["README.md", "server.rb"], &["docs/README.md"]);
    check(
        &["*.jsx?"],
        &["page.js", "page.jsx"],
        &["page.jsxx", "src/page.js"],
    );
    check(&["**"], &["all-the-files.md", "a/b/c.txt"], &[]);
    check(
        &["*.js"],
        &["app.js", "index.js"],
        &["js/index.js", "app.jsx"],
    );
    check(
        &["**.js"],
        &["index.js", "js/index.js", "src/js/app.js"],
        &["index.jsx", "js/index.ts"],
    );
    check(
        &["docs/*"],
        &["docs/README.md", "docs/file.txt"],
        &["docs/a/b.md", "README.md", "docs"],
    );
    check(
        &["docs/**"],
        &["docs/README.md", "docs/mona/octocat.txt"],
        &["README.md", "a/docs/x.md", "docs"],
    );
    check(
        &["docs/**/*.md"],
        &[
            "docs/README.md",
            "docs/mona/hello-world.md",
            "docs/a/markdown/file.md",
        ],
        &["docs/README.txt", "README.md", "a/docs/x.md"],
    );
    check(
        &["**/docs/**"],
        &[
            "docs/hello.md",
            "dir/docs/my-file.txt",
            "space/docs/plan/space.doc",
        ],
        &["docs", "mydocs/x.md", "docsx/y"],
    );
    check(
        &["**/README.md"],
        &["README.md", "js/README.md"],
        &["README.mdx", "js/XREADME.md"],
    );
    check(
        &["**/*src/**"],
        &["a/src/app.js", "my-src/code/js/app.js"],
        &["src", "a/srcs/app.js"],
    );
    check(
        &["**/*-post.md"],
        &["my-post.md", "path/their-post.md"],
        &["post.md", "path/my-post.mdx"],
    );
    check(
        &["**/migrate-*.sql"],
        &[
            "migrate-10909.sql",
            "db/migrate-v1.0.sql",
            "db/sept/migrate-v1.sql",
        ],
        &["migrate.sql", "db/migrate-v1.sqlite"],
    );
    check(
        &["*.md", "!README.md"],
        &["hello.md"],
        &["README.md", "docs/hello.md"],
    );
    check(
        &["*.md", "!README.md", "README*"],
        &["hello.md", "README.md", "README.doc"],
        &["docs/hello.md"],
    );
}

/// The examples of the `branches`, `tags` and `paths` sections of the workflow syntax.
#[test]
fn documented_include_exclude_examples() {
    check(
        &["main", "mona/octocat", "releases/**"],
        &["main", "mona/octocat", "releases/10", "releases/beta/mona"],
        &["mona/octocat/x", "release/10"],
    );
    check(
        &["releases/**", "!releases/**-alpha"],
        &["releases/10", "releases/beta/mona"],
        &["releases/10-alpha", "releases/beta/3-alpha"],
    );
    check(&["v2", "v1.*"], &["v2", "v1.9.1"], &["v3", "v1"]);
    check(
        &["sub-project/**", "!sub-project/docs/**"],
        &["sub-project/app.js"],
        &["sub-project/docs/readme.md"],
    );
}

#[test]
fn last_matching_pattern_decides() {
    check(
        &["**", "!release/**", "release/keep/**"],
        &["main", "release/keep/x"],
        &["release/1"],
    );
    // Patterns after the last match do not matter; an exclusion can be undone and redone.
    check(&["a", "!a", "a", "!a"], &[], &["a"]);
    check(&["!a", "a"], &["a"], &["b"]);
}

#[test]
fn negative_only_and_empty_lists_include_nothing() {
    check(&["!main"], &[], &["main", "develop"]);
    check(
        &["!main", "!develop"],
        &[],
        &["main", "develop", "feature/x"],
    );
    assert!(!matches_filters(&[], "main"));
}

#[test]
fn escaped_special_characters_are_literal() {
    check(&[r"c\+\+"], &["c++"], &["c", "ccc"]);
    check(&[r"what\?"], &["what?"], &["what", "wha"]);
    check(&[r"\!important"], &["!important"], &["important"]);
    check(&[r"\[x]"], &["[x]"], &["x"]);
    check(&[r"a\*"], &["a*"], &["ab", "a"]);
    check(&[r"dir\\file"], &[r"dir\file"], &["dir/file"]);
    // A `\` before an ordinary character is a literal backslash, as file paths allow.
    check(&[r"foo\bar"], &[r"foo\bar"], &["foobar"]);
}

fn changed(files: &[&str]) -> Vec<String> {
    files.iter().map(|file| (*file).to_owned()).collect()
}

#[test]
fn paths_runs_when_one_file_matches() {
    let paths = parse_all(&["**.js"]);
    assert!(paths_match(
        &paths,
        &[],
        &changed(&["README.md", "src/app.js"])
    ));
    assert!(!paths_match(
        &paths,
        &[],
        &changed(&["README.md", "docs/x.md"])
    ));
    let paths = parse_all(&["sub-project/**", "!sub-project/docs/**"]);
    assert!(!paths_match(
        &paths,
        &[],
        &changed(&["sub-project/docs/a.md"])
    ));
    assert!(paths_match(
        &paths,
        &[],
        &changed(&["sub-project/docs/a.md", "sub-project/main.rs"])
    ));
}

#[test]
fn paths_ignore_skips_only_when_every_file_is_ignored() {
    let ignore = parse_all(&["docs/**"]);
    assert!(!paths_match(
        &[],
        &ignore,
        &changed(&["docs/a.md", "docs/b/c.md"])
    ));
    assert!(paths_match(
        &[],
        &ignore,
        &changed(&["docs/a.md", "src/lib.rs"])
    ));
    // A negated ignore pattern brings a file back.
    let ignore = parse_all(&["docs/**", "!docs/api/**"]);
    assert!(paths_match(
        &[],
        &ignore,
        &changed(&["docs/a.md", "docs/api/v1.md"])
    ));
}

#[test]
fn no_changed_files_runs_only_without_path_filters() {
    let filter = parse_all(&["**"]);
    assert!(!paths_match(&filter, &[], &[]));
    assert!(!paths_match(&[], &filter, &[]));
    assert!(paths_match(&[], &[], &[]));
    assert!(paths_match(&[], &[], &changed(&["a"])));
}

#[test]
fn both_filters_must_allow() {
    let paths = parse_all(&["src/**"]);
    let ignore = parse_all(&["**.md"]);
    assert!(paths_match(&paths, &ignore, &changed(&["src/a.rs"])));
    assert!(!paths_match(&paths, &ignore, &changed(&["src/a.md"])));
    assert!(!paths_match(&paths, &ignore, &changed(&["docs/a.rs"])));
}

#[test]
fn only_the_first_300_files_are_compared() {
    let mut files: Vec<String> = (0..PATH_FILTER_FILE_LIMIT)
        .map(|index| format!("docs/{index}.md"))
        .collect();
    files.push("src/lib.rs".to_owned());
    // The only source file is the 301st: `paths` misses it and `paths-ignore` ignores all
    // the compared files, so neither runs, as GitHub documents.
    assert!(!paths_match(&parse_all(&["src/**"]), &[], &files));
    assert!(!paths_match(&[], &parse_all(&["docs/**"]), &files));
    // At position 300 it is still compared.
    files.swap(PATH_FILTER_FILE_LIMIT - 1, PATH_FILTER_FILE_LIMIT);
    assert!(paths_match(&parse_all(&["src/**"]), &[], &files));
    assert!(paths_match(&[], &parse_all(&["docs/**"]), &files));
}

/// Escapes `text` so that it is a pattern matching exactly itself.
fn escape(text: &str) -> String {
    let mut pattern = String::new();
    for c in text.chars() {
        if matches!(c, '[' | '?' | '*' | '+' | '\\' | '!') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// Text without pattern syntax, line breaks or a leading `!`, so it is a literal pattern.
const LITERAL: &str = "[a-zA-Z0-9._/ é€-]{1,20}";
/// Text that may contain anything a file path can, slashes and pattern characters included.
const ANY_PATH: &str = "[a-c/.*?+!\\[\\]\\\\ é]{0,20}";

proptest! {
    #[test]
    fn literal_pattern_matches_exactly_itself(text in LITERAL, other in LITERAL) {
        let pattern = FilterPattern::parse(&text).unwrap();
        prop_assert!(pattern.matches(&text));
        prop_assert_eq!(pattern.matches(&other), other == text);
        let longer = format!("{text}x");
        prop_assert!(!pattern.matches(&longer));
    }

    #[test]
    fn escaping_makes_special_characters_literal(text in "[^\n\r]{1,20}", other in ANY_PATH) {
        let pattern = FilterPattern::parse(&escape(&text)).unwrap();
        prop_assert!(!pattern.is_negated());
        prop_assert!(pattern.matches(&text));
        prop_assert_eq!(pattern.matches(&other), other == text);
    }

    #[test]
    fn star_never_crosses_a_slash(
        before in "[a-z]{0,5}",
        after in "[a-z]{0,5}",
        middle in "[a-z/.]{0,10}",
    ) {
        let pattern = FilterPattern::parse(&format!("{before}*{after}")).unwrap();
        let value = format!("{before}{middle}{after}");
        prop_assert_eq!(pattern.matches(&value), !middle.contains('/'));
    }

    #[test]
    fn double_star_matches_anything(value in any::<String>()) {
        prop_assert!(FilterPattern::parse("**").unwrap().matches(&value));
    }

    #[test]
    fn prefix_double_star_matches_everything_under_prefix(
        prefix in "[a-z]{1,5}(/[a-z]{1,5}){0,3}",
        rest in "[^\n]{0,20}",
        outside in "[a-z]{1,5}",
    ) {
        let pattern = FilterPattern::parse(&format!("{prefix}/**")).unwrap();
        let under = format!("{prefix}/{rest}");
        prop_assert!(pattern.matches(&under));
        let elsewhere = format!("{outside}x/{rest}");
        prop_assert_eq!(pattern.matches(&elsewhere), elsewhere.starts_with(&format!("{prefix}/")));
    }

    #[test]
    fn negation_flips_what_a_pattern_includes(body in ANY_PATH, value in ANY_PATH) {
        // Only patterns that parse say anything here; most random bodies do.
        if let Ok(positive) = FilterPattern::parse(&body)
            && !positive.is_negated()
        {
            let negative = FilterPattern::parse(&format!("!{body}")).unwrap();
            prop_assert!(negative.is_negated());
            prop_assert_eq!(negative.matches(&value), positive.matches(&value));
            let everything = FilterPattern::parse("**").unwrap();
            prop_assert_eq!(
                matches_filters(&[everything, negative], &value),
                !positive.matches(&value)
            );
            prop_assert_eq!(
                matches_filters(std::slice::from_ref(&positive), &value),
                positive.matches(&value)
            );
        }
    }

    #[test]
    fn random_patterns_parse_or_fail_cleanly(pattern in any::<String>(), value in any::<String>()) {
        if let Ok(parsed) = FilterPattern::parse(&pattern) {
            prop_assert_eq!(parsed.source(), pattern.as_str());
            prop_assert!(parsed.compiles(), "{} translated to a regex that does not compile", pattern);
            let _ = parsed.matches(&value);
        }
    }

    #[test]
    fn random_glob_syntax_parses_or_fails_cleanly(pattern in ANY_PATH, value in ANY_PATH) {
        if let Ok(parsed) = FilterPattern::parse(&pattern) {
            prop_assert!(parsed.compiles(), "{} translated to a regex that does not compile", pattern);
            let _ = parsed.matches(&value);
        }
    }
}

/// A pattern compiled through a clone is compiled for the original too: a workflow kept
/// loaded between events is used through copies, which must not each compile again.
#[test]
fn clones_share_the_compiled_regex() {
    let original = FilterPattern::parse("releases/**").unwrap();
    let copy = original.clone();
    assert!(!original.is_compiled());
    assert!(copy.matches("releases/v1"));
    assert!(original.is_compiled());
}
