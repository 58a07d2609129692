//! Property tests that feed the loader hostile and random input: it must return, never panic,
//! and stay fast. Case counts are bounded (PROPTEST_CASES) so CI runs them in seconds.

use gantry_workflow::Limits;
use proptest::prelude::*;

/// Fragments of real workflow syntax, so random combinations reach deep into the loader
/// instead of failing at the first YAML character.
const FRAGMENTS: &[&str] = &[
    "on: push\n",
    "on: [push, pull_request]\n",
    "jobs:\n",
    "  build:\n",
    "  test:\n",
    "    runs-on: ubuntu-latest\n",
    "    needs: build\n",
    "    needs: [build, test]\n",
    "    if: ${{ failure() }}\n",
    "    steps:\n",
    "      - run: echo ${{ matrix.os }}\n",
    "      - uses: actions/checkout@v4\n",
    "    strategy:\n",
    "      matrix:\n",
    "        os: [a, b]\n",
    "        include:\n",
    "          - os: c\n",
    "        exclude:\n",
    "          - os: a\n",
    "    env:\n",
    "      A: ${{ secrets.X }}\n",
    "on:\n",
    "  push:\n",
    "    branches: ['**', '!x']\n",
    "  schedule:\n",
    "    - cron: '*/5 * * * *'\n",
    "    timeout-minutes: 5\n",
    "    outputs:\n",
    "      o: ${{ steps.x.outputs.y }}\n",
    "  &a anchor: *a\n",
    "- ",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "${{",
    "}}",
    ":",
];

proptest! {
    #[test]
    fn random_fragment_files_never_panic(indices in prop::collection::vec(0..FRAGMENTS.len(), 0..60)) {
        let source: String = indices.iter().map(|&i| FRAGMENTS[i]).collect();
        let _ = gantry_workflow::load(&source, &Limits::default());
    }

    #[test]
    fn arbitrary_text_never_panics(source in ".{0,400}") {
        let _ = gantry_workflow::load(&source, &Limits::default());
    }
}
