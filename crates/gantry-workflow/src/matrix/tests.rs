//! Matrix expansion tests: one data-driven `check` per behaviour, GitHub's documented examples,
//! and properties of the expansion.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::equality::{expression_equals, parse_number};
use super::name::format_number;
use super::*;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str_with_options(text, serde_saphyr::options! { strict_booleans: true })
        .unwrap_or_else(|e| panic!("bad test YAML {text:?}: {e}"))
}

fn expand_yaml(matrix: &str) -> Result<Vec<Configuration>, MatrixError> {
    let spec = spec_from_json(&yaml(matrix))?;
    expand_configurations(&spec, GITHUB_MAX_CONFIGURATIONS)
}

/// Expands the YAML `matrix` and compares the combinations, in order, with the YAML list
/// `expected`.
#[track_caller]
fn check(matrix: &str, expected: &str) {
    let actual: Vec<Value> = expand_yaml(matrix)
        .unwrap_or_else(|e| panic!("expansion failed: {e}"))
        .into_iter()
        .map(|c| Value::Object(c.matrix.into_iter().collect()))
        .collect();
    assert_eq!(actual, yaml_list(expected), "matrix:\n{matrix}");
}

/// Like [`check`], comparing key order too (`Value`'s equality ignores it).
#[track_caller]
fn check_ordered(matrix: &str, expected: &str) {
    let actual: Vec<String> = expand_yaml(matrix)
        .unwrap_or_else(|e| panic!("expansion failed: {e}"))
        .iter()
        .map(|c| json!(c.matrix).to_string())
        .collect();
    let expected: Vec<String> = yaml_list(expected).iter().map(Value::to_string).collect();
    assert_eq!(actual, expected, "matrix:\n{matrix}");
}

fn yaml_list(text: &str) -> Vec<Value> {
    match yaml(text) {
        Value::Array(items) => items,
        other => panic!("expected a YAML list, got {other}"),
    }
}

/// Expands the YAML `matrix` and compares the display names of job `job`.
#[track_caller]
fn check_names(matrix: &str, job: &str, expected: &[&str]) {
    let names: Vec<String> = expand_yaml(matrix)
        .unwrap_or_else(|e| panic!("expansion failed: {e}"))
        .iter()
        .map(|c| c.display_name(job))
        .collect();
    assert_eq!(names, expected, "matrix:\n{matrix}");
}

/// Expects the YAML `matrix` to fail with the message `expected`.
#[track_caller]
fn check_error(matrix: &str, expected: &str) {
    match expand_yaml(matrix) {
        Ok(configurations) => panic!("expected an error, got {configurations:?}"),
        Err(error) => assert_eq!(error.to_string(), expected, "matrix:\n{matrix}"),
    }
}

#[test]
fn cross_product_first_key_varies_slowest() {
    check(
        "{ os: [linux, windows], node: [14, 16, 18] }",
        "[ {os: linux, node: 14}, {os: linux, node: 16}, {os: linux, node: 18},
           {os: windows, node: 14}, {os: windows, node: 16}, {os: windows, node: 18} ]",
    );
    check("{ a: [1] }", "[ {a: 1} ]");
}

#[test]
fn exclude_drops_rows_matching_all_its_keys() {
    // GitHub docs, "Excluding matrix configurations": 12 rows, 3 excluded.
    check(
        "
        os: [macos-latest, windows-latest]
        version: [12, 14, 16]
        environment: [staging, production]
        exclude:
          - os: macos-latest
            version: 12
            environment: production
          - os: windows-latest
            version: 16
        ",
        "[
          {os: macos-latest, version: 12, environment: staging},
          {os: macos-latest, version: 14, environment: staging},
          {os: macos-latest, version: 14, environment: production},
          {os: macos-latest, version: 16, environment: staging},
          {os: macos-latest, version: 16, environment: production},
          {os: windows-latest, version: 12, environment: staging},
          {os: windows-latest, version: 12, environment: production},
          {os: windows-latest, version: 14, environment: staging},
          {os: windows-latest, version: 14, environment: production},
        ]",
    );
}

#[test]
fn exclude_of_everything_yields_no_configurations() {
    check("{ os: [linux], exclude: [ {os: linux} ] }", "[]");
}

#[test]
fn include_extends_matching_rows_without_overwriting_vectors() {
    // GitHub docs, "Expanding or adding matrix configurations".
    check_ordered(
        "
        os: [windows-latest, ubuntu-latest]
        node: [14, 16]
        include:
          - os: windows-latest
            node: 16
            npm: 6
        ",
        "[
          {os: windows-latest, node: 14},
          {os: windows-latest, node: 16, npm: 6},
          {os: ubuntu-latest, node: 14},
          {os: ubuntu-latest, node: 16},
        ]",
    );
}

#[test]
fn include_overwrites_a_value_added_by_an_earlier_include() {
    check_ordered(
        "
        os: [linux, windows]
        include:
          - color: green
          - os: windows
            color: pink
        ",
        "[ {os: linux, color: green}, {os: windows, color: pink} ]",
    );
}

#[test]
fn include_matching_no_row_becomes_a_configuration() {
    // The vector keys come first, then the others, whatever the entry's order.
    check_ordered(
        "
        os: [linux]
        include:
          - arch: arm64
            os: macos
        ",
        "[ {os: linux}, {os: macos, arch: arm64} ]",
    );
}

#[test]
fn include_can_add_back_an_excluded_row() {
    check_ordered(
        "
        os: [linux, windows]
        exclude: [ {os: windows} ]
        include: [ {os: windows, shell: pwsh} ]
        ",
        "[ {os: linux}, {os: windows, shell: pwsh} ]",
    );
}

#[test]
fn github_docs_fruit_and_animal_example() {
    check_ordered(
        "
        fruit: [apple, pear]
        animal: [cat, dog]
        include:
          - color: green
          - color: pink
            animal: cat
          - fruit: apple
            shape: circle
          - fruit: banana
          - fruit: banana
            animal: cat
        ",
        "[
          {fruit: apple, animal: cat, color: pink, shape: circle},
          {fruit: apple, animal: dog, color: green, shape: circle},
          {fruit: pear, animal: cat, color: pink},
          {fruit: pear, animal: dog, color: green},
          {fruit: banana},
          {fruit: banana, animal: cat},
        ]",
    );
}

#[test]
fn include_only_matrix_has_one_configuration_per_entry() {
    check_ordered(
        "
        include:
          - { os: ubuntu, target: x86_64 }
          - { os: macos, target: aarch64, experimental: true }
        ",
        "[ {os: ubuntu, target: x86_64}, {os: macos, target: aarch64, experimental: true} ]",
    );
}

#[test]
fn object_values_match_leaf_by_leaf() {
    let matrix = "
        os:
          - { name: Ubuntu, runner: ubuntu-latest }
          - { name: Windows, runner: windows-latest }
        arch: [ [x64, avx2], [arm64] ]
        exclude:
          - os: { name: Windows, runner: windows-latest }
            arch: [arm64]
        include:
          - os: { runner: ubuntu-latest }
            apt: true
        ";
    check(
        matrix,
        "[
          {os: {name: Ubuntu, runner: ubuntu-latest}, arch: [x64, avx2], apt: true},
          {os: {name: Ubuntu, runner: ubuntu-latest}, arch: [arm64], apt: true},
          {os: {name: Windows, runner: windows-latest}, arch: [x64, avx2]},
        ]",
    );
}

#[test]
fn partial_mappings_and_array_prefixes_match_like_github() {
    // A subset of a mapping's keys, or the start of an array, is enough: GitHub compares leaves.
    check(
        "
        os: [ {name: Ubuntu, runner: ubuntu-latest}, {name: Windows, runner: windows-latest} ]
        exclude: [ {os: {runner: windows-latest}} ]
        ",
        "[ {os: {name: Ubuntu, runner: ubuntu-latest}} ]",
    );
    check(
        "{ flags: [ [a, b], [c] ], exclude: [ {flags: [a]} ] }",
        "[ {flags: [c]} ]",
    );
    // A key the row value lacks is null, so it does not match a string.
    check(
        "{ os: [ {name: Ubuntu} ], exclude: [ {os: {name: Ubuntu, foo: bar}} ] }",
        "[ {os: {name: Ubuntu}} ]",
    );
    // A mapping never equals a scalar.
    check(
        "{ os: [ {runner: ubuntu} ], exclude: [ {os: ubuntu} ] }",
        "[ {os: {runner: ubuntu}} ]",
    );
}

#[test]
fn comparisons_follow_the_expression_language() {
    // Strings compare case-insensitively; numbers and numeric strings are equal.
    check(
        "{ os: [Ubuntu-Latest, windows], exclude: [ {os: ubuntu-latest} ] }",
        "[ {os: windows} ]",
    );
    check(
        "{ node: ['14', '16'], exclude: [ {node: 14} ] }",
        "[ {node: '16'} ]",
    );
    check(
        "{ flag: [false, true], include: [ {flag: 0, label: off} ] }",
        "[ {flag: false, label: off}, {flag: true} ]",
    );
    // Keys are case-insensitive too: `OS` selects rows of vector `os`.
    check(
        "{ os: [linux, macos], include: [ {OS: macos, arm: true} ] }",
        "[ {os: linux}, {os: macos, arm: true} ]",
    );
}

#[test]
fn null_matches_null() {
    check("{ a: [~, 1], exclude: [ {a: ~} ] }", "[ {a: 1} ]");
}

#[test]
fn entry_without_leaves_matches_every_row() {
    check("{ os: [linux, macos], exclude: [ {os: {}} ] }", "[]");
}

#[test]
fn names_use_vector_values_of_rows_and_all_values_of_standalone_includes() {
    check_names(
        "
        os: [ubuntu, windows]
        version: [1.17, 14]
        include:
          - { os: windows, version: 14, experimental: true }
          - { os: macos, version: 3.10, arch: arm64 }
        ",
        "build",
        &[
            "build (ubuntu, 1.17)",
            "build (ubuntu, 14)",
            "build (windows, 1.17)",
            "build (windows, 14)",
            "build (macos, 3.1, arm64)",
        ],
    );
}

#[test]
fn names_flatten_nested_values_and_skip_nulls_and_empty_strings() {
    check_names(
        "
        os: [ {name: Ubuntu, matrix: ubuntu} ]
        flags: [ [a, {b: c}] ]
        on: [true]
        empty: ['']
        nothing: [~]
        ",
        "test",
        &["test (Ubuntu, ubuntu, a, c, true)"],
    );
    check_names("{ include: [ {x: ''} ] }", "job", &["job"]);
}

#[test]
fn display_name_uses_every_value() {
    let combination: Combination = [
        ("os".to_owned(), json!("ubuntu")),
        ("version".to_owned(), json!(3.1)),
        ("experimental".to_owned(), json!(false)),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        display_name("build", &combination),
        "build (ubuntu, 3.1, false)"
    );
}

#[test]
fn long_names_are_cut_to_100_utf16_units() {
    let name_of = |value: String| {
        let combination: Combination = [("v".to_owned(), json!(value))].into_iter().collect();
        display_name("job", &combination)
    };
    // "job (" and 95 characters and ")" is 101 units: cut to 97 plus "...".
    let cut = name_of("x".repeat(95));
    assert_eq!(cut, format!("job ({}...", "x".repeat(92)));
    assert_eq!(name_of("x".repeat(94)).encode_utf16().count(), 100);
    // An emoji is two units and is dropped whole rather than split: 5 + 61 + 2 * 15 = 96.
    let cut = name_of("é".repeat(61) + &"😀".repeat(40));
    assert_eq!(
        cut,
        format!("job ({}{}...", "é".repeat(61), "😀".repeat(15))
    );
}

#[test]
fn numbers_print_as_dotnet_g15() {
    for (number, expected) in [
        (14.0, "14"),
        (1.17, "1.17"),
        (3.10, "3.1"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.3"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.0001, "0.0001"),
        (0.00001, "1E-05"),
        (1.5e-7, "1.5E-07"),
        (123_456_789_012_345.0, "123456789012345"),
        (1e15, "1E+15"),
        (1_234_567_890_123_456_789.0, "1.23456789012346E+18"),
        (1e100, "1E+100"),
        (f64::INFINITY, "Infinity"),
    ] {
        assert_eq!(format_number(number), expected, "{number:?}");
    }
}

#[test]
fn strings_become_numbers_like_javascript() {
    for (text, expected) in [
        ("", 0.0),
        (" 12 ", 12.0),
        ("-1.5e2", -150.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("0x1F", 31.0),
        ("0xFFFFFFFF", -1.0),
        ("0o17", 15.0),
        ("Infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
    ] {
        assert_eq!(parse_number(text), expected, "{text:?}");
    }
    for text in [
        "abc",
        "inf",
        "NaN",
        "1e",
        "e5",
        ".",
        "0x",
        "0x1G",
        "0X1F",
        "1,000",
        "0x100000000",
    ] {
        assert!(parse_number(text).is_nan(), "{text:?}");
    }
}

#[test]
fn equality_coerces_like_the_expression_language() {
    for (left, right, expected) in [
        (json!("ABC"), json!("abc"), true),
        (json!("14"), json!(14), true),
        (json!(14), json!("14.0"), true),
        (json!(true), json!(1), true),
        (json!(true), json!("1"), true),
        (json!(false), json!(""), true),
        (json!(null), json!(false), true),
        (json!(null), json!(0), true),
        (json!(null), json!(""), true),
        (json!(null), json!("abc"), false),
        (json!("abc"), json!("abd"), false),
        (json!({"a": 1}), json!("a"), false),
        (json!([1]), json!(1), false),
        (json!({}), json!(null), false),
    ] {
        assert_eq!(
            expression_equals(Some(&left), &right),
            expected,
            "{left} == {right}"
        );
    }
    assert!(expression_equals(None, &json!(null)));
    assert!(!expression_equals(None, &json!("x")));
}

#[test]
fn errors_name_the_problem_and_the_key() {
    check_error(
        "{ os: [], node: [14] }",
        "matrix vector 'os' does not contain any values",
    );
    check_error("{ os: linux }", "matrix vector 'os' must be a list");
    check_error(
        "{ os: [linux], exclude: [ {arch: x64} ] }",
        "matrix exclude key 'arch' does not match any key within the matrix",
    );
    // Keys that include adds cannot be excluded: excludes run first.
    check_error(
        "{ os: [linux], include: [ {arch: x64} ], exclude: [ {arch: x64} ] }",
        "matrix exclude key 'arch' does not match any key within the matrix",
    );
    check_error(
        "{ os: [linux], exclude: [ {} ] }",
        "matrix exclude entry 0 must not be empty",
    );
    check_error(
        "{ os: [linux], include: [ {a: 1}, {} ] }",
        "matrix include entry 1 does not contain any values",
    );
    check_error(
        "{ os: [linux], include: [ linux ] }",
        "matrix include entry 0 must be a mapping",
    );
    check_error(
        "{ os: [linux], exclude: {os: linux} }",
        "matrix exclude must be a list",
    );
    check_error("{ include: [] }", "matrix must define at least one vector");
    check_error("{}", "matrix must define at least one vector");
    check_error("[linux]", "matrix must be a mapping");
    check_error(
        "{ os: [linux], OS: [macos] }",
        "matrix vector 'OS' is defined more than once (keys are case-insensitive)",
    );
}

#[test]
fn more_configurations_than_the_limit_is_an_error() {
    let a: Vec<u32> = (0..16).collect();
    let b: Vec<u32> = (0..17).collect();
    let matrix = json!({ "a": a, "b": b });
    let spec = spec_from_json(&matrix).unwrap();
    assert_eq!(
        expand(&spec, GITHUB_MAX_CONFIGURATIONS)
            .unwrap_err()
            .to_string(),
        "strategy produced 272 configurations which exceeds the maximum of 256 configurations"
    );
    // Excluded rows do not count; include entries that match no row do.
    let matrix = json!({
        "a": a,
        "b": b,
        "exclude": [{"b": 16}, {"b": 15}],
        "include": [{"a": 99}],
    });
    let spec = spec_from_json(&matrix).unwrap();
    assert_eq!(expand(&spec, GITHUB_MAX_CONFIGURATIONS).unwrap().len(), 241);
    assert_eq!(
        expand(&spec, 240),
        Err(MatrixError::TooManyConfigurations {
            count: 241,
            limit: 240
        })
    );
}

#[test]
fn huge_cross_products_are_refused_without_being_scanned() {
    let big: Vec<u32> = (0..1000).collect();
    let matrix = json!({ "a": big, "b": big, "c": big, "d": big, "e": big, "f": big, "g": big });
    let spec = spec_from_json(&matrix).unwrap();
    assert!(matches!(
        expand(&spec, GITHUB_MAX_CONFIGURATIONS),
        Err(MatrixError::TooManyConfigurations {
            count: usize::MAX,
            ..
        })
    ));
}

#[test]
fn expressions_defer_expansion() {
    for (matrix, key) in [
        ("{ os: '${{ fromJSON(needs.a.outputs.os) }}' }", "os"),
        ("{ os: [linux, '${{ inputs.os }}'] }", "os"),
        ("{ os: [linux], include: '${{ fromJSON(x) }}' }", "include"),
        ("{ os: [linux], exclude: [ {os: '${{ x }}'} ] }", "exclude"),
        ("{ '${{ x }}': [1] }", "${{ x }}"),
    ] {
        let error = spec_from_json(&yaml(matrix)).unwrap_err();
        assert!(error.is_deferred(), "{matrix}: {error}");
        assert_eq!(
            error,
            MatrixError::Deferred {
                key: key.to_owned()
            },
            "{matrix}"
        );
    }
    assert_eq!(
        spec_from_json(&json!("${{ fromJSON(needs.setup.outputs.matrix) }}")),
        Err(MatrixError::DeferredMatrix)
    );
    // Errors in the literal parts are reported even when another part is deferred.
    assert_eq!(
        spec_from_json(&yaml("{ os: '${{ x }}', arch: [] }")),
        Err(MatrixError::EmptyVector {
            key: "arch".to_owned()
        })
    );
    // An expression in `exclude` alone provides no vector.
    assert_eq!(
        spec_from_json(&yaml("{ exclude: '${{ x }}' }")),
        Err(MatrixError::NoVectors)
    );
}

// ---- properties ----

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0u8..6).prop_map(Value::from),
        "[a-cA-C]{1,2}".prop_map(Value::from),
    ]
}

/// Up to four vectors `k0..`, each of one to four distinct values.
fn vectors() -> impl Strategy<Value = IndexMap<String, Vec<Value>>> {
    prop::collection::vec(prop::collection::vec(scalar(), 1..5), 1..5).prop_map(|vectors| {
        vectors
            .into_iter()
            .enumerate()
            .map(|(i, values)| {
                let mut distinct: Vec<Value> = Vec::new();
                for value in values {
                    if !distinct.contains(&value) {
                        distinct.push(value);
                    }
                }
                (format!("k{i}"), distinct)
            })
            .collect()
    })
}

/// Filter entries over keys `k0..k4` (some of them vectors) and `x0`/`x1` (never vectors).
fn entries() -> impl Strategy<Value = Vec<Combination>> {
    let key = prop_oneof![
        (0usize..5).prop_map(|i| format!("k{i}")),
        (0usize..2).prop_map(|i| format!("x{i}")),
    ];
    prop::collection::vec(prop::collection::vec((key, scalar()), 1..4), 0..4).prop_map(|entries| {
        entries
            .into_iter()
            .map(|pairs| pairs.into_iter().collect())
            .collect()
    })
}

/// The cross product written the obvious way, for comparison.
fn reference_product(vectors: &IndexMap<String, Vec<Value>>) -> Vec<Combination> {
    let mut rows = vec![Combination::new()];
    for (key, values) in vectors {
        rows = rows
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |value| {
                    let mut longer = row.clone();
                    longer.insert(key.clone(), value.clone());
                    longer
                })
            })
            .collect();
    }
    rows
}

fn spec(dimensions: IndexMap<String, Vec<Value>>) -> MatrixSpec {
    MatrixSpec {
        dimensions,
        ..MatrixSpec::default()
    }
}

proptest! {
    #[test]
    fn product_is_complete_distinct_and_ordered(dimensions in vectors()) {
        let expected = reference_product(&dimensions);
        let size: usize = dimensions.values().map(Vec::len).product();
        let spec = spec(dimensions);
        let combinations = expand(&spec, usize::MAX).unwrap();
        prop_assert_eq!(combinations.len(), size);
        for (i, combination) in combinations.iter().enumerate() {
            prop_assert!(!combinations[..i].contains(combination));
            let keys: Vec<&String> = combination.keys().collect();
            let vector_keys: Vec<&String> = spec.dimensions.keys().collect();
            prop_assert_eq!(keys, vector_keys);
        }
        prop_assert_eq!(&combinations, &expected);
        prop_assert_eq!(expand(&spec, usize::MAX).unwrap(), combinations);
    }

    #[test]
    fn excludes_only_remove(dimensions in vectors(), excludes in entries()) {
        let excludes: Vec<Combination> = excludes
            .into_iter()
            .map(|mut entry| {
                entry.retain(|key, _| dimensions.contains_key(key));
                entry
            })
            .filter(|entry| !entry.is_empty())
            .collect();
        let all = expand(&spec(dimensions.clone()), usize::MAX).unwrap();
        let spec = MatrixSpec { exclude: excludes, ..spec(dimensions) };
        let kept = expand(&spec, usize::MAX).unwrap();
        // `kept` is a subsequence of `all`.
        let mut rest = all.iter();
        for combination in &kept {
            prop_assert!(rest.any(|candidate| candidate == combination));
        }
    }

    #[test]
    fn includes_never_change_vector_values(dimensions in vectors(), include in entries()) {
        let all = expand(&spec(dimensions.clone()), usize::MAX).unwrap();
        let include_count = include.len();
        let spec = MatrixSpec { include, ..spec(dimensions) };
        let configurations = expand_configurations(&spec, usize::MAX).unwrap();
        prop_assert!(configurations.len() >= all.len());
        prop_assert!(configurations.len() <= all.len() + include_count);
        for (row, configuration) in all.iter().zip(&configurations) {
            prop_assert_eq!(configuration.named_entries, row.len());
            let vector_part: Combination = configuration
                .matrix
                .iter()
                .take(row.len())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(&vector_part, row);
        }
    }
}
